import { describe, expect, it } from 'vitest';
import type { RunningHub } from '../server/index.ts';
import { RegisterAgentInput } from '../shared/schemas/agent.ts';
import { CreateWorkOrderInput, type WorkOrder } from '../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { StateWriter } from '../server/state-writer.ts';
import { storedDocs } from '../server/domain/machinery/state.ts';
import { ADMIN, SETTINGS } from './helpers/domain.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { control, crashCopy, startHub, tempDir } from './helpers/hub.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { logRecorder } from './helpers/log-recorder.ts';
import { untilTrue } from './helpers/wait.ts';

// The hub's timers across a clean stop, a crash and a restart, on a clock the test moves. The
// background sweep is left to its longest interval: each test sweeps when it has moved the clock.

const T0 = 1_767_261_600_000;

/** A clock the test moves by hand. */
function manualClock() {
  const clock = { now: T0, read: () => clock.now };
  return clock;
}

/** One sweep of the hub's timers at the clock's time, as the background sweep would run it. */
const sweep = (hub: RunningHub) => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });

const orderIn = (hub: RunningHub, workflowId: string, workOrderId: string): WorkOrder => hub.state.workflows.get(workflowId)!.workOrders[workOrderId]! as WorkOrder;

/** A started workflow `wf` with one order `o` of task type `t`, running on raw agent `a1`. */
async function runningOrder(hub: RunningHub, timeouts: Partial<WorkOrder['timeouts']> = {}) {
  const client = await control(hub);
  const wf = await client.createWorkflow({ id: 'wf', userQuery: 'timers across restarts' });
  await wf.start();
  const worker = await rawAgent(hub.url, 'a1', ['t']);
  await wf.createWorkOrder({ id: 'o', taskType: 't', timeouts });
  const offer = await worker.nextOffer();
  const progress = await worker.request('task.progress', { ...refOf(offer.assignment), progress: 10 });
  expect(progress.ok).toBe(true);
  return { client, wf, worker, offer };
}

/** A hub restarted at T0 + 60 s on the data of one whose order `o` failed at T0 and backs off 10 s: over while it was down. */
async function restartedAfterBackoff(): Promise<RunningHub> {
  const dataDir = tempDir();
  const clock = manualClock();
  const options = { dataDir, sweepIntervalMs: 60_000, backoffBaseMs: 10_000, backoffMaxMs: 10_000 };
  const first = await startHub(options, { clock: clock.read });
  const { client, worker, offer } = await runningOrder(first);
  await worker.request('task.fail', { ...refOf(offer.assignment), error: 'flaky', retryable: true });
  worker.close();
  await client.close();
  await first.close();
  clock.now = T0 + 60_000;
  return startHub(options, { clock: clock.read });
}

describe('retry backoff across a restart', () => {
  it('waits only the rest of its backoff after a clean stop', async () => {
    const dataDir = tempDir();
    const clock = manualClock();
    const options = { dataDir, sweepIntervalMs: 60_000, backoffBaseMs: 10_000, backoffMaxMs: 10_000 };
    const first = await startHub(options, { clock: clock.read });
    const { client, worker, offer } = await runningOrder(first);
    const failed = await worker.request('task.fail', { ...refOf(offer.assignment), error: 'flaky', retryable: true });
    expect(failed.data.state).toBe('queued');
    expect(orderIn(first, 'wf', 'o').notBefore).toBe(T0 + 10_000);
    worker.close();
    await client.close();
    await first.close();

    clock.now = T0 + 4_000;
    const second = await startHub(options, { clock: clock.read });
    const again = await rawAgent(second.url, 'a1', ['t']);
    clock.now = T0 + 9_999;
    await sweep(second);
    expect(orderIn(second, 'wf', 'o')).toMatchObject({ state: 'queued', notBefore: T0 + 10_000 });
    clock.now = T0 + 10_000;
    await sweep(second);
    expect(orderIn(second, 'wf', 'o').state).toBe('offered');
    expect((await again.nextOffer()).assignment.attempt).toBe(2);
  });

  it('is over once its time has passed while the hub was down: offered at once, and no longer marked as backing off', async () => {
    const second = await restartedAfterBackoff();
    // Nobody can take it yet: it waits in the queue, its backoff long over, which the sweep says.
    await sweep(second);
    expect(orderIn(second, 'wf', 'o')).toMatchObject({ state: 'queued', notBefore: null });
    const again = await rawAgent(second.url, 'a1', ['t']);
    expect((await again.nextOffer()).assignment.attempt).toBe(2);
  });

  it('once over while the hub was down, does not cut short the next backoff of the same order', async () => {
    const second = await restartedAfterBackoff();
    // Offered at once, before any sweep, and failed again: a backoff of its own starts.
    const again = await rawAgent(second.url, 'a1', ['t']);
    const retry = await again.nextOffer();
    await again.request('task.fail', { ...refOf(retry.assignment), error: 'flaky again', retryable: true });
    await sweep(second);
    expect(orderIn(second, 'wf', 'o')).toMatchObject({ state: 'queued', notBefore: T0 + 70_000 });
  });
});

describe('a running attempt across a crash', () => {
  it('is kept by an agent that registers again within graceMs of the restart, with a lease counted from the restart', async () => {
    const clock = manualClock();
    const options = { sweepIntervalMs: 60_000, graceMs: 5_000 };
    const first = await startHub({ ...options, dataDir: tempDir() }, { clock: clock.read });
    const { offer } = await runningOrder(first, { leaseMs: 20_000 });
    const dataDir = crashCopy(first.options.dataDir);

    clock.now = T0 + 60_000;
    const second = await startHub({ ...options, dataDir }, { clock: clock.read });
    expect((await (await control(second)).getAgent('a1')).disconnectedSince).toBe(T0 + 60_000);
    clock.now = T0 + 64_000;
    const again = await rawAgent(second.url, 'a1', ['t']);
    clock.now = T0 + 79_999;
    await sweep(second);
    expect(orderIn(second, 'wf', 'o').state).toBe('running');
    const done = await again.request('task.complete', { ...refOf(offer.assignment), result: 'survived' });
    expect(done.data.state).toBe('completed');
  });

  it('is retried as agent_lost graceMs after the restart when its agent does not come back', async () => {
    const clock = manualClock();
    const options = { sweepIntervalMs: 60_000, graceMs: 5_000 };
    const first = await startHub({ ...options, dataDir: tempDir() }, { clock: clock.read });
    await runningOrder(first, { leaseMs: 20_000 });
    const dataDir = crashCopy(first.options.dataDir);

    clock.now = T0 + 60_000;
    const second = await startHub({ ...options, dataDir }, { clock: clock.read });
    clock.now = T0 + 64_999;
    await sweep(second);
    expect(orderIn(second, 'wf', 'o').state).toBe('running');
    clock.now = T0 + 65_000;
    await sweep(second);
    const order = orderIn(second, 'wf', 'o');
    expect(order.state).toBe('queued');
    expect(order.history.at(-1)).toMatchObject({ outcome: 'agent_lost' });
  });
});

describe('clocks that count across a restart', () => {
  it('keeps a queued order’s age: an old low-priority order still goes before a newer normal one', async () => {
    const dataDir = tempDir();
    const clock = manualClock();
    const options = { dataDir, sweepIntervalMs: 60_000, agingMs: 1_000 };
    const first = await startHub(options, { clock: clock.read });
    const client = await control(first);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'ageing across restarts' });
    await wf.start();
    await wf.createWorkOrder({ id: 'old-low', taskType: 't', priority: 'low' });
    clock.now = T0 + 3_000;
    await wf.createWorkOrder({ id: 'new-normal', taskType: 't', priority: 'normal' });
    await client.close();
    await first.close();

    clock.now = T0 + 10_000;
    const second = await startHub(options, { clock: clock.read });
    const worker = await rawAgent(second.url, 'a1', ['t']);
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('old-low');
  });

  it('fails an order whose overallMs ran out while the hub was down at the first sweep', async () => {
    const clock = manualClock();
    const options = { sweepIntervalMs: 60_000 };
    const first = await startHub({ ...options, dataDir: tempDir() }, { clock: clock.read });
    const client = await control(first);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'overall timeout across a crash' });
    await wf.start();
    await wf.createWorkOrder({ id: 'o', taskType: 't', timeouts: { overallMs: 30_000 } });
    const dataDir = crashCopy(first.options.dataDir);

    clock.now = T0 + 30_000;
    const second = await startHub({ ...options, dataDir }, { clock: clock.read });
    await sweep(second);
    expect(orderIn(second, 'wf', 'o')).toMatchObject({ state: 'failed', error: 'overall timeout of 30000 ms exceeded' });
  });

  it('archives a workflow that ended just before a crash keepFinishedMs after it ended, not after the restart', async () => {
    const clock = manualClock();
    const options = { sweepIntervalMs: 10, keepFinishedMs: 60_000 };
    const first = await startHub({ ...options, dataDir: tempDir() }, { clock: clock.read });
    const client = await control(first);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'archived across a crash' });
    await wf.start();
    await wf.complete();
    const dataDir = crashCopy(first.options.dataDir);

    clock.now = T0 + 50_000;
    const second = await startHub({ ...options, dataDir }, { clock: clock.read });
    expect(second.state.workflows.has('wf')).toBe(true);
    clock.now = T0 + 60_000;
    await untilTrue(() => !second.state.workflows.has('wf'), 'the workflow archived');
    expect((await (await control(second)).workflow('wf').get()).status).toBe('completed');
  });
});

describe('snapshot scheduling across crashes', () => {
  it('counts the journal a crash left toward the next snapshot', async () => {
    const options = { sweepIntervalMs: 60_000, snapshotAfterBytes: 4096, snapshotJournalRatio: 0 };
    let dataDir = tempDir();
    let snapshots = 0;
    // Each run journals about 3 KB, under the threshold, and is killed: the journal grows by that much every run.
    for (let run = 0; run < 3 && snapshots === 0; run++) {
      const log = logRecorder();
      const hub = await startHub({ ...options, dataDir }, { logger: log.logger });
      const client = await control(hub);
      for (let i = 0; i < 2; i++) await client.createWorkflow({ id: `wf-${run}-${i}`, userQuery: 'x'.repeat(900) });
      await hub.settle();
      snapshots += log.find('snapshot written').length + log.find('snapshot started').length;
      dataDir = crashCopy(dataDir);
      await client.close();
      await hub.close();
    }
    expect(snapshots).toBeGreaterThan(0);
  });
});

/** A writer (a node that leads) at T0 with workflow `wf` and its order `o` running on agent `a1`, lease 20 s. */
async function leaderWithRunningOrder(clock: ReturnType<typeof manualClock>): Promise<StateWriter> {
  const writer = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS, now: clock.read });
  const agentA1 = { role: 'agent' as const, name: 'a1', agentId: 'a1' };
  await writer.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'wf', userQuery: 'led twice' }), actor: ADMIN });
  await writer.dispatch({ type: 'workflow.start', input: { workflowId: 'wf' }, actor: ADMIN });
  await writer.dispatch({ type: 'agent.register', input: { ...RegisterAgentInput.parse({ agentId: 'a1', agentType: 'w', taskTypes: ['t'] }), newConnection: true }, actor: agentA1 });
  await writer.dispatch({ type: 'workOrder.create', input: CreateWorkOrderInput.parse({ workflowId: 'wf', id: 'o', taskType: 't', timeouts: { leaseMs: 20_000 } }), actor: ADMIN });
  const attemptToken = writer.state.workflows.get('wf')!.workOrders.o!.attempt!.token;
  await writer.dispatch({ type: 'offer.answer', input: { workflowId: 'wf', workOrderId: 'o', attemptToken, accept: true }, actor: agentA1 });
  return writer;
}

/** Promotes `writer` a minute after T0, during which another node led (the agent heartbeated there, unseen here), and sweeps. */
async function promotedAMinuteLater(writer: StateWriter, clock: ReturnType<typeof manualClock>) {
  clock.now = T0 + 60_000;
  await writer.promote();
  const swept = await writer.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });
  return { lapsedLeases: swept.lapsedLeases, state: writer.state.workflows.get('wf')!.workOrders.o!.state };
}

describe('a running attempt across a promotion', () => {
  it('gets a lease counted from the promotion on a node that led before, not the one it held then', async () => {
    const clock = manualClock();
    const writer = await leaderWithRunningOrder(clock);
    writer.demote();
    expect(await promotedAMinuteLater(writer, clock)).toEqual({ lapsedLeases: 0, state: 'running' });
    await writer.close();
  });

  it('gets a lease counted from the promotion on a follower, not from when it loaded its replica', async () => {
    const clock = manualClock();
    const leader = await leaderWithRunningOrder(clock);
    const follower = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS, now: clock.read, follower: true });
    follower.replaceState(new Map(structuredClone(storedDocs(leader.state))), leader.lastSeq);
    expect(await promotedAMinuteLater(follower, clock)).toEqual({ lapsedLeases: 0, state: 'running' });
    await follower.close();
    await leader.close();
  });
});
