import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { RunningHub } from '../server/index.ts';
import type { WorkOrder } from '../shared/schemas/work-order.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { agent, control, startHub, TOKENS } from './helpers/hub.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { untilTrue, untilWorkflow } from './helpers/wait.ts';

// The machine's wall clock steps (NTP, a resumed VM, an operator setting the time) while the hub
// runs on its own clock: the test moves Date.now only, as a step would, and time goes on for real.

const TEN_MINUTES = 10 * 60_000;

/** The process's wall clock, which the test steps (Date.now only, as NTP would); restored when the test ends. */
function steppedWallClock() {
  const wall = Date.now;
  let offset = 0;
  vi.spyOn(Date, 'now').mockImplementation(() => wall() + offset);
  onTestFinished(() => {
    vi.restoreAllMocks();
  });
  return {
    /** Steps it by `ms` (back when negative). */
    step(ms: number) {
      offset += ms;
    },
  };
}

/** One sweep of the hub's timers, as the background sweep would run it. */
const sweep = (hub: RunningHub) => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });

const orderIn = (hub: RunningHub, workOrderId: string): WorkOrder => hub.state.workflows.get('wf')!.workOrders[workOrderId]! as WorkOrder;

describe('a step of the wall clock', () => {
  it('forwards by ten minutes ends no lease, offer, grace period or overall timeout early: running work goes on, offers wait for their answer, a reconnecting agent keeps its work, a waiting order keeps waiting', async () => {
    const clock = steppedWallClock();
    const hub = await startHub({ sweepIntervalMs: 60_000, graceMs: 60_000 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped forward' });
    await wf.start();
    const runner = await rawAgent(hub.url, 'runner', ['run']);
    const asked = await rawAgent(hub.url, 'asked', ['ask']);
    const leaving = await rawAgent(hub.url, 'leaving', ['leave']);
    await wf.createWorkOrder({ id: 'running', taskType: 'run', timeouts: { leaseMs: 30_000 } });
    await wf.createWorkOrder({ id: 'offered', taskType: 'ask', timeouts: { acceptMs: 30_000 } });
    await wf.createWorkOrder({ id: 'graced', taskType: 'leave', timeouts: { leaseMs: 600_000 } });
    await wf.createWorkOrder({ id: 'waiting', taskType: 'nobody', timeouts: { overallMs: 60_000 } });
    const run = await runner.nextOffer();
    expect((await runner.request('task.progress', { ...refOf(run.assignment), progress: 10 })).ok).toBe(true);
    await asked.nextOffer();
    const graced = await leaving.nextOffer();
    expect((await leaving.request('task.progress', { ...refOf(graced.assignment), progress: 10 })).ok).toBe(true);
    leaving.close();
    await untilTrue(() => typeof hub.state.agents!.leaving!.disconnectedSince === 'number', 'the agent leaving disconnected');

    clock.step(TEN_MINUTES);
    const swept = await sweep(hub);

    expect(swept).toMatchObject({ expiredOffers: 0, lapsedLeases: 0, offline: 0, timedOut: 0 });
    expect(['running', 'offered', 'graced', 'waiting'].map((id) => orderIn(hub, id).state)).toEqual(['running', 'offered', 'running', 'queued']);
    expect(hub.state.agents!.leaving!.status).not.toBe('offline');
    // Timestamps follow the wall clock: a report now is stamped ten minutes on. (socket.io-client
    // times its pings by Date.now, so the step dropped the runner's socket: it registers again.)
    const back = await rawAgent(hub.url, 'runner', ['run']);
    const done = await back.request('task.complete', { ...refOf(run.assignment), result: 'done' });
    expect(done.ok).toBe(true);
    expect(orderIn(hub, 'running').endedAt).toBeGreaterThanOrEqual(orderIn(hub, 'running').startedAt! + TEN_MINUTES);
  });

  it('forwards by ten minutes, then a rollback, ends no offer, backoff or overall timeout early: the rebuilt index keeps the timers they ran on', async () => {
    const clock = steppedWallClock();
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped forward, then a write failed' });
    await wf.start();
    const asked = await rawAgent(hub.url, 'asked', ['ask']);
    const flaky = await rawAgent(hub.url, 'flaky', ['retry']);
    await wf.createWorkOrder({ id: 'offered', taskType: 'ask', timeouts: { acceptMs: 30_000 } });
    await wf.createWorkOrder({ id: 'waiting', taskType: 'nobody', timeouts: { overallMs: 60_000 } });
    await wf.createWorkOrder({ id: 'backing-off', taskType: 'retry' });
    await asked.nextOffer();
    const failing = await flaky.nextOffer();
    await flaky.request('task.fail', { ...refOf(failing.assignment), error: 'flaky', retryable: true });

    clock.step(TEN_MINUTES);
    store.hold();
    const lost = wf.createWorkOrder({ id: 'lost', taskType: 'nobody' }).catch((error: unknown) => error);
    await store.holding.promise;
    store.fail();
    await lost;
    const swept = await sweep(hub);

    expect(swept).toMatchObject({ expiredOffers: 0, timedOut: 0 });
    expect(['offered', 'waiting', 'backing-off'].map((id) => orderIn(hub, id).state)).toEqual(['offered', 'queued', 'queued']);
    expect(orderIn(hub, 'backing-off').notBefore).not.toBeNull();
  });

  it('forwards by ten minutes, then a cancel whose write failed, ends no backoff or overall timeout early: the timers its orders left with go back for the rebuilt index', async () => {
    const clock = steppedWallClock();
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped forward, then a cancel failed' });
    await wf.start();
    const flaky = await rawAgent(hub.url, 'flaky', ['retry']);
    await wf.createWorkOrder({ id: 'waiting', taskType: 'nobody', timeouts: { overallMs: 60_000 } });
    await wf.createWorkOrder({ id: 'backing-off', taskType: 'retry' });
    const failing = await flaky.nextOffer();
    await flaky.request('task.fail', { ...refOf(failing.assignment), error: 'flaky', retryable: true });

    clock.step(TEN_MINUTES);
    store.hold();
    const cancelled = wf.cancel().catch((error: unknown) => error);
    await store.holding.promise;
    store.fail();
    expect(await cancelled).toMatchObject({ code: 'UNAVAILABLE' });
    const swept = await sweep(hub);

    expect(swept).toMatchObject({ timedOut: 0 });
    expect(['waiting', 'backing-off'].map((id) => orderIn(hub, id).state)).toEqual(['queued', 'queued']);
    expect(orderIn(hub, 'backing-off').notBefore).not.toBeNull();
  });

  it('backwards by ten minutes holds no grace period for its length: a disconnected agent goes offline graceMs after it left, and its work is retried', async () => {
    const clock = steppedWallClock();
    const hub = await startHub({ sweepIntervalMs: 10, graceMs: 100 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped back' });
    await wf.start();
    const leaving = await rawAgent(hub.url, 'leaving', ['t']);
    await wf.createWorkOrder({ id: 'o', taskType: 't', timeouts: { leaseMs: 600_000 } });
    const offer = await leaving.nextOffer();
    expect((await leaving.request('task.progress', { ...refOf(offer.assignment), progress: 10 })).ok).toBe(true);
    leaving.close();
    await untilTrue(() => typeof hub.state.agents!.leaving!.disconnectedSince === 'number', 'the agent disconnected');
    clock.step(-TEN_MINUTES);
    await untilTrue(() => hub.state.agents!.leaving!.status === 'offline', 'the agent offline', 2_000);
    expect(orderIn(hub, 'o')).toMatchObject({ state: 'queued', history: [{ agentId: 'leaving', outcome: 'agent_lost' }] });
  });

  it('backwards by ten minutes leaves a declined order its place: the next free agent is offered it before orders queued after it', async () => {
    const clock = steppedWallClock();
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped back, then an order declined' });
    await wf.start();
    const first = await rawAgent(hub.url, 'first', ['t']);
    await wf.createWorkOrder({ id: 'old', taskType: 't' });
    const offer = await first.nextOffer();
    clock.step(-TEN_MINUTES);
    await wf.createWorkOrders([{ id: 'newer', taskType: 't' }, { id: 'newest', taskType: 't' }]);
    offer.ack({ accept: false, reason: 'not this one' });
    expect((await first.nextOffer()).assignment.workOrderId).toBe('newer');
    const second = await rawAgent(hub.url, 'second', ['t']);
    expect((await second.nextOffer()).assignment.workOrderId).toBe('old');
  });

  it('backwards by ten minutes makes no duration negative: the uptime in /healthz and the wait in the assignment latency metric', async () => {
    const clock = steppedWallClock();
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped back while an order waited' });
    await wf.start();
    await wf.createWorkOrder({ id: 'o', taskType: 't' });
    clock.step(-TEN_MINUTES);
    const worker = await rawAgent(hub.url, 'w', ['t']);
    await worker.nextOffer();
    const health = (await (await fetch(`${hub.url}/healthz`)).json()) as { uptimeMs: number };
    expect(health.uptimeMs).toBeGreaterThanOrEqual(0);
    const metrics = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } })).text();
    const line = (name: string) => Number(metrics.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
    expect(line('switchboard_assignment_latency_seconds_count')).toBe(1);
    expect(line('switchboard_assignment_latency_seconds_sum')).toBeGreaterThanOrEqual(0);
  });

  it('backwards by ten minutes does not rate-limit a connection for its length: the agent’s next heartbeat is taken', async () => {
    const clock = steppedWallClock();
    const hub = await startHub();
    const worker = await rawAgent(hub.url, 'w', ['t']);
    clock.step(-TEN_MINUTES);
    const beat = await worker.request('agent.heartbeat', { attemptTokens: [] });
    expect(beat).toMatchObject({ ok: true, data: { renewed: [], lost: [] } });
  });

  it('backwards by ten minutes holds no retry for its length: a failed order is offered again once its backoff is over', async () => {
    const clock = steppedWallClock();
    const hub = await startHub({ sweepIntervalMs: 10, backoffBaseMs: 50, backoffMaxMs: 50 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'clock stepped back during a backoff' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'w', ['t']);
    await wf.createWorkOrder({ id: 'o', taskType: 't' });
    const first = await worker.nextOffer();
    const failed = await worker.request('task.fail', { ...refOf(first.assignment), error: 'flaky', retryable: true });
    expect(failed.data).toMatchObject({ state: 'queued' });
    clock.step(-TEN_MINUTES);
    await untilTrue(() => worker.offers.length > 0, 'the retry offered', 2_000);
    expect((await worker.nextOffer()).assignment.attempt).toBe(2);
  });

  it('backwards by ten minutes holds no progress report of an SDK agent for its length: the handler’s next progress is sent at once', async () => {
    const clock = steppedWallClock();
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'clock stepped back mid-task' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'w', agentType: 'worker' });
    await worker.onTask('t', async (_task, ctx) => {
      await ctx.progress(10);
      clock.step(-TEN_MINUTES);
      await ctx.progress(20);
      return { result: 'done' };
    });
    await wf.createWorkOrder({ id: 'o', taskType: 't' });
    // Far below the ten minutes the step would hold it for, and far above a report's time on a busy machine.
    const done = await untilWorkflow(hub, 'wf', (w) => w.workOrders.o?.state === 'completed', 'the order completed', 15_000);
    // Completed: the handler's second progress was acknowledged, within the wait above.
    expect(done.workOrders.o).toMatchObject({ state: 'completed', result: 'done' });
  });

  it('backwards by ten minutes does not age the orders queued after it: a critical order queued before is offered before a low one queued after', async () => {
    const clock = steppedWallClock();
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'a queue across a step back' });
    await wf.start();
    await wf.createWorkOrder({ id: 'critical', taskType: 't', priority: 'critical' });
    clock.step(-TEN_MINUTES);
    // Its queuedAt reads ten minutes earlier, worth ten levels of ageing at the default agingMs.
    await wf.createWorkOrder({ id: 'low', taskType: 't', priority: 'low' });
    const worker = await rawAgent(hub.url, 'w', ['t']);
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('critical');
  });

  it('forwards by ten minutes does not time out an SDK request waiting for the connection to come back: it is sent, and answered', async () => {
    const clock = steppedWallClock();
    const client = await control(await startHub());
    const dropped = new Promise((resolve) => client.connection.socket.once('disconnect', resolve));
    client.connection.socket.io.engine.close();
    await dropped;
    const pending = client.listAgents({ timeoutMs: 5_000 });
    clock.step(TEN_MINUTES);
    expect(await pending).toEqual([]);
  });
});
