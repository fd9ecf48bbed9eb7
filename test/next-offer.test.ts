import { io } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import type { Assignment, WorkOrder } from '../shared/schemas/work-order.ts';
import { agent, control, startHub, TOKENS } from './helpers/hub.ts';
import { rawAgent, rawAgentOnStartedWorkflow, refOf } from './helpers/raw-agent.ts';
import { deferred, untilOrder, untilTrue, untilWorkflow } from './helpers/wait.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';

/** busyAgent on a hub whose journal writes can be held. */
async function busyAgentHeld() {
  const { hub, store } = await hubWithHeldWrites();
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'next offers, writes held' });
  await wf.start();
  const worker = await rawAgent(hub.url, 'raw-1', ['t']);
  await wf.createWorkOrder({ id: 'first', taskType: 't' });
  const first = await worker.nextOffer();
  first.ack({ accept: true });
  await wf.createWorkOrder({ id: 'second', taskType: 't' });
  const order = (id: string) => hub.state.workflows.get(wf.id)!.workOrders[id]!;
  return { hub, store, client, wf, worker, first: refOf(first.assignment), order };
}

/** A started workflow and a raw one-slot agent already running order `first`, accepted. */
async function busyAgent() {
  const { hub, wf, worker } = await rawAgentOnStartedWorkflow('raw-1', 'next offers in the reply');
  await wf.createWorkOrder({ id: 'first', taskType: 't' });
  const first = await worker.nextOffer();
  first.ack({ accept: true });
  // The agent's one slot is taken: this order waits in the queue.
  await wf.createWorkOrder({ id: 'second', taskType: 't' });
  expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'queued' });
  return { hub, wf, worker, first: refOf(first.assignment) };
}

describe('a completion that takes the next offer in its reply (next: true)', () => {
  it('carries the offer in the reply instead of pushing it, and the first report on it accepts it', async () => {
    const { wf, worker, first } = await busyAgent();

    const reply = await worker.request('task.complete', { ...first, result: 1, next: true });
    expect(reply).toMatchObject({ ok: true, data: { state: 'completed', next: [{ workOrderId: 'second', taskType: 't', attempt: 1 }] } });
    const carried = reply.data.next[0];
    // Requests on one socket are answered in order: a push made with that change would be here by now.
    await worker.request('agent.heartbeat', { attemptTokens: [] });
    expect(worker.offers).toHaveLength(0);
    expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'offered', attempts: 0, attempt: { token: carried.attemptToken, agentId: 'raw-1', acceptedAt: null } });

    expect(await worker.request('task.progress', { ...refOf(carried), progress: 50 })).toMatchObject({ ok: true });
    expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'running', attempts: 1, progress: 50 });
    const last = await worker.request('task.complete', { ...refOf(carried), result: 2, next: true });
    // Nothing is queued: the reply says so with an empty list.
    expect(last).toMatchObject({ ok: true, data: { state: 'completed', next: [] } });
    expect((await wf.getWorkOrder('second')).result).toBe(2);
  });

  it('pushes the next offer as before when the report does not ask for it, and the reply has no next', async () => {
    const { wf, worker, first } = await busyAgent();
    const reply = await worker.request('task.complete', { ...first, result: 1 });
    expect(reply.ok).toBe(true);
    expect(reply.data).not.toHaveProperty('next');
    const pushed = await worker.nextOffer();
    expect(pushed.assignment).toMatchObject({ workOrderId: 'second', attempt: 1 });
    pushed.ack({ accept: true });
    expect(await worker.request('task.complete', { ...refOf(pushed.assignment), result: 2 })).toMatchObject({ ok: true, data: { state: 'completed' } });
    expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'completed', attempts: 1, declinedBy: [] });
  });

  it('carries the next offer on a failure report too, the failed order going back to the queue', async () => {
    const { wf, worker, first } = await busyAgent();
    const reply = await worker.request('task.fail', { ...first, error: 'flaky', retryable: true, next: true });
    expect(reply).toMatchObject({ ok: true, data: { state: 'queued', next: [{ workOrderId: 'second' }] } });
    expect(await wf.getWorkOrder('first')).toMatchObject({ state: 'queued', attempts: 1, error: 'flaky' });
  });

  it('withdraws a carried offer whose reply was lost with the connection: no attempt is spent, and the agent gets it again', async () => {
    const { hub, wf, worker, first } = await busyAgent();
    // The completion goes out and the connection closes before its reply can come back.
    worker.socket.emit('task.complete', { ...first, result: 1, next: true }, () => undefined);
    worker.close();
    const after = await untilWorkflow(hub, wf.id, (w) => w.workOrders.first?.state === 'completed' && w.workOrders.second?.state === 'queued', 'the completion committed and the carried offer withdrawn');
    expect(after.workOrders.second).toMatchObject({ attempts: 0, declinedBy: [], attempt: null });

    const again = await rawAgent(hub.url, 'raw-1', ['t']);
    const pushed = await again.nextOffer();
    expect(pushed.assignment).toMatchObject({ workOrderId: 'second', attempt: 1 });
    pushed.ack({ accept: true });
    expect(await again.request('task.complete', { ...refOf(pushed.assignment), result: 2 })).toMatchObject({ ok: true, data: { state: 'completed' } });
    again.close();
  });

  it('gives back the carried offers an agent has not accepted when it starts draining: the order is queued for others at once', async () => {
    const { hub, wf, worker, first } = await busyAgent();
    // The completion takes the next offer in its reply; the agent starts draining before it runs it
    // (a draining SDK drops such an offer: no answer would ever come).
    const [reply, drained] = await Promise.all([
      worker.request('task.complete', { ...first, result: 1, next: true }),
      worker.request('agent.status', { status: 'draining' }),
    ]);
    // The offer went out with the completion; the reply carries it unless the drain, committed in
    // the same batch, withdrew it before the reply left.
    expect(reply).toMatchObject({ ok: true, data: { state: 'completed' } });
    expect(drained).toMatchObject({ ok: true, data: { status: 'draining' } });
    expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'queued', attempt: null, attempts: 0, declinedBy: [] });
    // Another agent takes it at once; the draining one is not held against it.
    const other = await rawAgent(hub.url, 'raw-2', ['t']);
    const offer = await other.nextOffer();
    expect(offer.assignment).toMatchObject({ workOrderId: 'second', attempt: 1 });
  });

  it('is refused with VALIDATION when next is not a boolean, and nothing changes', async () => {
    const { wf, worker, first } = await busyAgent();
    expect(await worker.request('task.complete', { ...first, next: 'yes' })).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(await wf.getWorkOrder('first')).toMatchObject({ state: 'running' });
    expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'queued' });
  });
});

describe('the SDK agent takes its next work in the completion reply', () => {
  it('runs a queue of orders on one slot with a single pushed offer; every order completes once', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a queue drained through completion replies' });
    const worker = await agent(hub, { agentId: 'sdk-1', agentType: 'w', logger: null });
    const runs = new Map<string, number>();
    await worker.onTask('t', async (task, ctx) => {
      runs.set(task.workOrderId, (runs.get(task.workOrderId) ?? 0) + 1);
      await ctx.progress(50);
      return { result: task.workOrderId };
    });
    const pushed: string[] = [];
    worker.connection.socket.on('assignment', (assignment: { workOrderId: string }) => pushed.push(assignment.workOrderId));
    await wf.createWorkOrders(Array.from({ length: 20 }, (_, i) => ({ id: `o${i}`, taskType: 't' })));
    await wf.start();
    const done = await untilWorkflow(hub, wf.id, (w) => Object.values(w.workOrders).every((o) => o.state === 'completed'), 'every order completed');
    expect(Object.values(done.workOrders).map((o) => [o.id, o.attempts, o.result])).toEqual(Array.from({ length: 20 }, (_, i) => [`o${i}`, 1, `o${i}`]));
    expect([...runs.values()]).toEqual(Array(20).fill(1));
    // The first order is pushed; each later one came in the reply to the completion before it.
    expect(pushed).toEqual(['o0']);
  });

  it('accepts a carried offer with a heartbeat when its handler reports nothing for half of acceptMs', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a quiet handler' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'sdk-quiet', agentType: 'w', logger: null });
    await worker.onTask('t', async (task) => {
      // Reports nothing until the hub shows the order running: only the SDK's accept can get it there.
      if (task.workOrderId === 'quiet') await untilOrder(hub, wf.id, 'quiet', 'running');
      return { result: task.workOrderId };
    });
    const pushed: string[] = [];
    worker.connection.socket.on('assignment', (assignment: { workOrderId: string }) => pushed.push(assignment.workOrderId));
    await wf.createWorkOrders([
      { id: 'loud', taskType: 't' },
      { id: 'quiet', taskType: 't', timeouts: { acceptMs: 200 } },
    ]);
    const done = await untilWorkflow(hub, wf.id, (w) => w.workOrders.quiet?.state === 'completed', 'the quiet order completed');
    expect(done.workOrders.quiet).toMatchObject({ attempts: 1, declinedBy: [], result: 'quiet' });
    expect(pushed).toEqual(['loud']);
  });

  it('accepts a carried offer as its handler starts: the order is running, not offered, while a quiet handler works', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a quiet handler on a carried offer' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'sdk-quiet-long', agentType: 'w', logger: null });
    const seen = deferred<WorkOrder>();
    await worker.onTask('t', async (task) => {
      // Reports nothing until the hub shows the order running. With acceptMs and leaseMs this long
      // (no heartbeat due for minutes), only an accept sent as the handler starts gets it there.
      if (task.workOrderId === 'quiet') seen.resolve(await untilOrder(hub, wf.id, 'quiet', 'running'));
      return { result: task.workOrderId };
    });
    const pushed: string[] = [];
    worker.connection.socket.on('assignment', (assignment: { workOrderId: string }) => pushed.push(assignment.workOrderId));
    await wf.createWorkOrders([
      { id: 'loud', taskType: 't', timeouts: { leaseMs: 600_000 } },
      { id: 'quiet', taskType: 't', timeouts: { acceptMs: 600_000, leaseMs: 600_000 } },
    ]);
    const running = await seen.promise;
    expect(running.attempt).toMatchObject({ agentId: 'sdk-quiet-long', acceptedAt: expect.any(Number) });
    const done = await untilOrder(hub, wf.id, 'quiet', 'completed');
    expect(done).toMatchObject({ attempts: 1, declinedBy: [], result: 'quiet' });
    // The attempt is measured from its accept, made before the handler finished, not from the completion.
    expect(done.history).toEqual([expect.objectContaining({ outcome: 'completed', startedAt: running.attempt!.acceptedAt })]);
    expect(pushed).toEqual(['loud']);
  });

  it('sends no accept of its own for a carried offer whose handler reports progress first: that report accepts it', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'handlers that report first' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'sdk-reports-first', agentType: 'w' });
    const sent: string[] = [];
    worker.connection.socket.onAnyOutgoing((event: string) => sent.push(event));
    await worker.onTask('t', async (_task, ctx) => {
      await ctx.progress(50);
      return { result: 'done' };
    });
    await wf.createWorkOrders(Array.from({ length: 5 }, (_, i) => ({ id: `job-${i}`, taskType: 't' })));
    const done = await untilWorkflow(hub, wf.id, (w) => w.workOrderCounts.completed === 5, 'five orders completed');
    // One slot: the first order pushed, the other four carried in completion replies.
    expect(sent.filter((event) => event === 'task.complete')).toHaveLength(5);
    expect(sent.filter((event) => event === 'agent.heartbeat')).toEqual([]);
    for (const order of Object.values(done.workOrders)) expect(order.history.map((h) => h.outcome)).toEqual(['completed']);
  });

  it('pushes the carried offer to the connection that took the agent over before the completion committed, never counting it against the agent', async () => {
    const { hub, store, client, wf, worker, first, order } = await busyAgentHeld();
    store.hold();
    const progress = wf.updateProgress('held', 10);
    await store.holding.promise;
    // A newer connection registers raw-1 while that write is held.
    const newer = io(`${hub.url}/agent`, { auth: { token: TOKENS.agent }, transports: ['websocket'], reconnection: false, forceNew: true });
    const pushed = deferred<Assignment>();
    newer.on('assignment', (assignment: Assignment, ack: (reply: unknown) => void) => {
      pushed.resolve(assignment);
      ack({ accept: true });
    });
    const registered = newer.emitWithAck('agent.register', { agentId: 'raw-1', agentType: 'raw', taskTypes: ['t'], maxConcurrentTasks: 1, labels: { connection: 'newer' } });
    await untilTrue(() => hub.state.agents?.['raw-1']?.labels.connection === 'newer', 'the newer connection registered', 3000);
    // The old connection, not yet closed, completes and asks for its next work: both commit together.
    worker.socket.emit('task.complete', { ...first, result: 1, next: true }, () => undefined);
    await untilTrue(() => order('first').state === 'completed' && order('second').state === 'offered', 'the completion applied', 3000);
    store.release();
    expect(await registered).toMatchObject({ ok: true });
    await progress;
    expect(await pushed.promise).toMatchObject({ workOrderId: 'second', attemptToken: order('second').attempt!.token });
    expect(await untilOrder(hub, wf.id, 'second', 'running')).toMatchObject({ declinedBy: [], attempts: 1, attempt: { agentId: 'raw-1' } });
    expect(await client.getAgent('raw-1')).toMatchObject({ load: 1 });
    newer.disconnect();
  });

  it('leaves out of the reply an offer withdrawn by its order\'s cancel in the same batch', async () => {
    const { store, wf, worker, first, order } = await busyAgentHeld();
    store.hold();
    const progress = wf.updateProgress('held', 10);
    await store.holding.promise;
    const completed = worker.request('task.complete', { ...first, result: 1, next: true });
    await untilTrue(() => order('first').state === 'completed' && order('second').state === 'offered', 'the completion applied');
    const cancelled = wf.cancelWorkOrder('second', 'not needed');
    await untilTrue(() => order('second').state === 'cancelled', 'the cancel applied');
    store.release();
    await Promise.all([progress, cancelled]);
    expect(await completed).toMatchObject({ ok: true, data: { state: 'completed', next: [] } });
    expect(await wf.getWorkOrder('second')).toMatchObject({ state: 'cancelled', attempts: 0 });
  });
});
