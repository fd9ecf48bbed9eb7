import { describe, expect, it } from 'vitest';
import type { RunningHub } from '../server/index.ts';
import { HubOptions } from '../server/options.ts';
import type { WorkOrder } from '../shared/schemas/work-order.ts';
import { control, monitor, startHub, tempDir } from './helpers/hub.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { untilOrder } from './helpers/wait.ts';

// An order every capable agent declined, or let its offer lapse, is offered to them again once
// declinedRetryMs (default 60 s) has passed: one stall of the one GPU worker strands nothing for good.
// On a clock the test moves; the background sweep is left to its longest interval.

const T0 = 1_767_261_600_000;
const PERIOD = HubOptions.parse({}).declinedRetryMs!;

function manualClock() {
  const clock = { now: T0, read: () => clock.now };
  return clock;
}

/** One sweep at the clock's time, as the background sweep would run it. */
const sweep = (hub: RunningHub) => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });
const orderIn = (hub: RunningHub, id: string): WorkOrder => hub.state.workflows.get('wf')!.workOrders[id]! as WorkOrder;

/** A hub on `clock`, a started workflow `wf`, and the one raw agent `gpu` for task type `t`. */
async function oneAgent(clock: ReturnType<typeof manualClock>, options: Parameters<typeof startHub>[0] = {}) {
  const log = logRecorder('info');
  const hub = await startHub({ sweepIntervalMs: 60_000, ...options }, { clock: clock.read, logger: log.logger });
  const client = await control(hub);
  const wf = await client.createWorkflow({ id: 'wf', userQuery: 'one GPU worker' });
  await wf.start();
  const worker = await rawAgent(hub.url, 'gpu', ['t']);
  return { hub, client, wf, worker, log };
}

describe('declines forgotten after declinedRetryMs', () => {
  it('offers an order whose offer lapsed to the same agent again after the period, which completes it; a monitor sees each step', async () => {
    const clock = manualClock();
    const { hub, wf, worker, log } = await oneAgent(clock);
    const live = await (await monitor(hub)).subscribe('wf');
    await wf.createWorkOrder({ id: 'frame', taskType: 't', timeouts: { acceptMs: 5_000 } });
    await worker.nextOffer(); // never answered: the agent stalled
    clock.now = T0 + 5_000;
    expect((await sweep(hub)).expiredOffers).toBe(1);
    const retryAt = T0 + 5_000 + PERIOD;
    const marked = await live.until((w) => w.workOrders['frame']?.waiting?.retryAt === retryAt, { what: 'the all_declined mark with its retryAt' });
    expect(marked.workOrders['frame']).toMatchObject({ state: 'queued', declinedBy: ['gpu'], waiting: { reason: 'all_declined', retryAt } });
    expect(marked.unservable).toBe(1);

    clock.now = retryAt - 1;
    expect((await sweep(hub)).declinesForgotten).toBe(0);
    expect(orderIn(hub, 'frame').state).toBe('queued');
    const healing = 'declines forgotten: work orders every capable agent had declined are offered again';
    expect(log.find(healing)).toHaveLength(0);
    clock.now = retryAt;
    expect((await sweep(hub)).declinesForgotten).toBe(1);
    // The operator is told, once for the sweep, naming the order.
    expect(log.find(healing)).toEqual([expect.objectContaining({ level: LEVEL.info, orders: 1, named: ['wf/frame'], afterMs: PERIOD })]);
    const offer = await worker.nextOffer();
    expect(offer.assignment).toMatchObject({ workOrderId: 'frame', attempt: 1 });
    offer.ack({ accept: true });
    expect((await worker.request('task.complete', { ...refOf(offer.assignment), result: 'rendered' })).ok).toBe(true);
    const done = await live.until((w) => w.workOrders['frame']?.state === 'completed', { what: 'the order completed' });
    expect(done.workOrders['frame']).toMatchObject({ declinedBy: [], waiting: null, result: 'rendered', attempts: 1 });
    expect(done.unservable).toBe(0);
    expect((await wf.summary()).unservable).toBe(0);
  });

  it('offers a declined order again once per period, for as long as its agent declines it', async () => {
    const clock = manualClock();
    const { hub, worker, wf } = await oneAgent(clock);
    await wf.createWorkOrder({ id: 'frame', taskType: 't' });
    for (let period = 1; period <= 3; period++) {
      (await worker.nextOffer()).ack({ accept: false, reason: 'not now' });
      await untilOrder(hub, 'wf', 'frame', 'queued');
      expect(orderIn(hub, 'frame').waiting).toEqual({ reason: 'all_declined', retryAt: clock.now + PERIOD });
      clock.now += PERIOD;
      expect((await sweep(hub)).declinesForgotten).toBe(1);
    }
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('frame');
    const agent = await (await control(hub)).getAgent('gpu');
    expect(agent.stats.declined).toBe(3);
    expect(worker.offers).toHaveLength(0);
  });

  it('waits the rest of its period after a restart', async () => {
    const clock = manualClock();
    const dataDir = tempDir();
    const { hub, client, wf, worker } = await oneAgent(clock, { dataDir });
    await wf.createWorkOrder({ id: 'frame', taskType: 't' });
    (await worker.nextOffer()).ack({ accept: false, reason: 'not now' });
    await untilOrder(hub, 'wf', 'frame', 'queued');
    worker.close();
    await client.close();
    await hub.close();

    clock.now = T0 + PERIOD / 2;
    const second = await startHub({ dataDir, sweepIntervalMs: 60_000 }, { clock: clock.read });
    const again = await rawAgent(second.url, 'gpu', ['t']);
    expect(orderIn(second, 'frame')).toMatchObject({ state: 'queued', declinedBy: ['gpu'], waiting: { reason: 'all_declined', retryAt: T0 + PERIOD } });
    clock.now = T0 + PERIOD - 1;
    expect((await sweep(second)).declinesForgotten).toBe(0);
    clock.now = T0 + PERIOD;
    expect((await sweep(second)).declinesForgotten).toBe(1);
    expect((await again.nextOffer()).assignment.workOrderId).toBe('frame');
  });

  it('never forgets them with declinedRetryMs null, and refuses a negative period', async () => {
    expect(HubOptions.safeParse({ declinedRetryMs: -1 }).success).toBe(false);
    const clock = manualClock();
    const { hub, worker, wf } = await oneAgent(clock, { declinedRetryMs: null });
    await wf.createWorkOrder({ id: 'frame', taskType: 't' });
    (await worker.nextOffer()).ack({ accept: false, reason: 'not now' });
    await untilOrder(hub, 'wf', 'frame', 'queued');
    expect(orderIn(hub, 'frame').waiting).toEqual({ reason: 'all_declined' });
    clock.now += 10 * PERIOD;
    expect((await sweep(hub)).declinesForgotten).toBe(0);
    expect(orderIn(hub, 'frame')).toMatchObject({ state: 'queued', declinedBy: ['gpu'] });
  });
});
