import { describe, expect, it } from 'vitest';
import { rawAgent } from './helpers/raw-agent.ts';
import { agent, control, startHub } from './helpers/hub.ts';
import { deferred, untilOrder, untilTrue } from './helpers/wait.ts';
import type { RunningHub } from '../server/index.ts';
import { EmbeddedStore } from '../server/store/embedded-store.ts';
import { diskFull, WrappedStore } from './helpers/wrapped-store.ts';
import { tempDir } from './helpers/hub.ts';

/** The embedded store, with a switch that makes the next writes fail as a full disk would. */
class FailingStore extends WrappedStore {
  failing = false;
  /** Resolved at the first write refused. */
  readonly refused = deferred();
  override append(records: string | Uint8Array, firstSeq: number) {
    if (!this.failing) return this.inner.append(records, firstSeq);
    this.refused.resolve();
    return Promise.reject(diskFull());
  }
}

/** The pool's record of `agentId` on the hub. */
const pooled = (hub: RunningHub, agentId: string) => hub.state.agents?.[agentId];

/**
 * A started workflow whose order `running` (task type `job`) runs on agent `agentId` until
 * `release` is resolved, then completes with `result`; `leaving` is that agent.
 */
async function runningJob(hub: RunningHub, agentId: string, options: { userQuery: string; maxConcurrentTasks?: number; result?: string }) {
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: options.userQuery });
  await wf.start();
  const leaving = await agent(hub, { agentId, agentType: 'w', maxConcurrentTasks: options.maxConcurrentTasks ?? 1, logger: null });
  const started = deferred();
  const release = deferred();
  await leaving.onTask('job', async () => {
    started.resolve();
    await release.promise;
    return { result: options.result ?? 'done' };
  });
  await wf.createWorkOrder({ id: 'running', taskType: 'job' });
  await started.promise;
  return { client, wf, leaving, release };
}

describe('an agent closing once its running work is done (close({ finish: true }))', () => {
  it('runs its task to the end, takes no new work meanwhile, and leaves its agentId taking work for the next process', async () => {
    const hub = await startHub();
    const { wf, leaving, release } = await runningJob(hub, 'worker-1', { userQuery: 'a deploy while a task runs', maxConcurrentTasks: 2, result: 'finished by the leaving process' });

    const closed = leaving.close({ finish: true });
    await untilTrue(() => pooled(hub, 'worker-1')?.status === 'draining', 'the drain on the hub');
    expect(pooled(hub, 'worker-1')?.drainingUntilDisconnect).toBe(true);
    // A free slot, but no new work: the order waits for another agent.
    await wf.createWorkOrder({ id: 'later', taskType: 'job' });
    expect((await wf.getWorkOrder('later')).state).toBe('queued');
    release.resolve();
    await closed;
    expect(await untilOrder(hub, wf.id, 'running', 'completed')).toMatchObject({ attempts: 1, result: 'finished by the leaving process' });

    // The drain was this connection's: gone with it, so the agentId is not left draining.
    await untilTrue(() => typeof pooled(hub, 'worker-1')?.disconnectedSince === 'number', 'the disconnect on the hub');
    expect(pooled(hub, 'worker-1')).toMatchObject({ status: 'idle', load: 0 });
    expect(pooled(hub, 'worker-1')?.drainingUntilDisconnect).toBeUndefined();
    const next = await agent(hub, { agentId: 'worker-1', agentType: 'w' });
    expect(next.draining).toBe(false);
    await next.onTask('job', () => ({ result: 'the next process' }));
    const later = await untilOrder(hub, wf.id, 'later', 'completed');
    expect({ result: later.result, attempts: later.attempts, declinedBy: later.declinedBy }).toEqual({ result: 'the next process', attempts: 1, declinedBy: [] });
  });

  it('leaves a drain an operator set before it in place: the agentId stays draining for the next process', async () => {
    const hub = await startHub();
    const { client, wf, leaving, release } = await runningJob(hub, 'worker-2', { userQuery: 'drained by an operator, then closed' });
    await client.updateAgentStatus('worker-2', { status: 'draining' });
    const closed = leaving.close({ finish: true });
    release.resolve();
    await closed;
    await untilOrder(hub, wf.id, 'running', 'completed');
    await untilTrue(() => typeof pooled(hub, 'worker-2')?.disconnectedSince === 'number', 'the disconnect on the hub');
    expect(pooled(hub, 'worker-2')?.status).toBe('draining');
    const next = await agent(hub, { agentId: 'worker-2', agentType: 'w' });
    expect(next.draining).toBe(true);
  });

  it('asked while away, declines nothing at its return that the hub holds against its agentId', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a deploy during a network blip' });
    await wf.start();
    const leaving = await agent(hub, { agentId: 'worker-4', agentType: 'w', maxConcurrentTasks: 2, logger: null });
    const release = deferred();
    await leaving.onTask('job', async (task) => {
      if (task.workOrderId === 'running') await release.promise;
      return { result: 'done' };
    });
    await wf.createWorkOrder({ id: 'running', taskType: 'job' });
    await untilOrder(hub, wf.id, 'running', 'running');
    leaving.connection.socket.disconnect();
    await untilTrue(() => typeof pooled(hub, 'worker-4')?.disconnectedSince === 'number', 'the disconnect on the hub');
    const closed = leaving.close({ finish: true });
    // Queued while it is away: offered to it the moment it registers again, with a free slot.
    await wf.createWorkOrder({ id: 'later', taskType: 'job' });
    leaving.connection.socket.connect();
    await untilTrue(() => pooled(hub, 'worker-4')?.status === 'draining', 'the drain on the hub');
    release.resolve();
    await closed;
    await untilOrder(hub, wf.id, 'running', 'completed');
    // Turned down as draining: not held against the agentId, which the next process takes it under.
    expect((await wf.getWorkOrder('later')).declinedBy).toEqual([]);
    const next = await agent(hub, { agentId: 'worker-4', agentType: 'w' });
    await next.onTask('job', () => ({ result: 'the next process' }));
    const later = await untilOrder(hub, wf.id, 'later', 'completed');
    expect({ result: later.result, declinedBy: later.declinedBy }).toEqual({ result: 'the next process', declinedBy: [] });
  });

  it('a plain close() while it waits aborts the task, as close() does', async () => {
    const hub = await startHub({ graceMs: 60_000 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'told to stop at once after all' });
    await wf.start();
    const leaving = await agent(hub, { agentId: 'worker-3', agentType: 'w' });
    const aborted = deferred<string>();
    await leaving.onTask('job', (_task, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => {
      aborted.resolve(String(ctx.signal.reason));
      reject(new Error('aborted'));
    })));
    await wf.createWorkOrder({ id: 'running', taskType: 'job' });
    await untilOrder(hub, wf.id, 'running', 'running');
    const finishing = leaving.close({ finish: true });
    await untilTrue(() => pooled(hub, 'worker-3')?.status === 'draining', 'the drain on the hub');
    await leaving.close();
    await finishing;
    expect(await aborted.promise).toContain('closing');
  });
});

describe('agent.status with untilDisconnect, on the wire', () => {
  it('drains for the connection only; it goes with status "draining" alone', async () => {
    const hub = await startHub();
    const raw = await rawAgent(hub.url, 'raw-1', ['job']);
    const refused = await raw.socket.emitWithAck('agent.status', { status: 'active', untilDisconnect: true });
    expect(refused).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(pooled(hub, 'raw-1')?.status).toBe('idle');
    const drained = await raw.socket.emitWithAck('agent.status', { status: 'draining', untilDisconnect: true });
    expect(drained).toMatchObject({ ok: true, data: { status: 'draining', drainingUntilDisconnect: true } });
    raw.socket.disconnect();
    await untilTrue(() => typeof pooled(hub, 'raw-1')?.disconnectedSince === 'number', 'the disconnect on the hub');
    expect(pooled(hub, 'raw-1')?.status).toBe('idle');
  });
});

describe('an agent finishing across a reconnect', () => {
  it('does not hold an offer pushed at its registration against its agentId: the next process under it takes the order', async () => {
    const hub = await startHub({ graceMs: 60_000 });
    const { wf, leaving, release } = await runningJob(hub, 'worker-4', { userQuery: 'a blip while a process finishes', maxConcurrentTasks: 2 });
    const closed = leaving.close({ finish: true });
    await untilTrue(() => pooled(hub, 'worker-4')?.status === 'draining', 'the drain on the hub');
    await wf.createWorkOrder({ id: 'later', taskType: 'job' });
    // The blip: the hub ends the connection's drain and offers 'later' in the registration's commit.
    const offered = deferred();
    leaving.connection.socket.on('assignment', (assignment: { workOrderId: string }) => assignment.workOrderId === 'later' && offered.resolve());
    leaving.connection.socket.io.engine.close();
    await offered.promise;
    await untilTrue(() => hub.state.workflows.get(wf.id)!.workOrders.later!.attempt === null, 'the offer declined');
    expect((await wf.getWorkOrder('later')).declinedBy).toEqual([]);
    expect(pooled(hub, 'worker-4')).toMatchObject({ status: 'draining', drainingUntilDisconnect: true });
    release.resolve();
    await closed;
    expect(await untilOrder(hub, wf.id, 'running', 'completed')).toMatchObject({ attempts: 1 });
    expect(pooled(hub, 'worker-4')?.stats.declined).toBe(0);
    const next = await agent(hub, { agentId: 'worker-4', agentType: 'w' });
    await next.onTask('job', () => ({ result: 'the next process' }));
    expect((await untilOrder(hub, wf.id, 'later', 'completed')).result).toBe('the next process');
  });
});

describe('an agent finishing while a control client makes it active', () => {
  it('drains its connection again, so the offers it declines are not held against its agentId', async () => {
    const hub = await startHub();
    const { client, wf, leaving, release } = await runningJob(hub, 'worker-5', { userQuery: 'resumed by an operator while it finishes', maxConcurrentTasks: 2 });
    const closed = leaving.close({ finish: true });
    await untilTrue(() => pooled(hub, 'worker-5')?.status === 'draining', 'the drain on the hub');
    await wf.createWorkOrder({ id: 'later', taskType: 'job' });
    // Active: 'later' is offered to it in the same commit, and it declines it.
    await client.updateAgentStatus('worker-5', { status: 'active' });
    expect(hub.state.workflows.get(wf.id)!.workOrders.later!.attempt?.agentId).toBe('worker-5');
    await untilTrue(() => pooled(hub, 'worker-5')?.drainingUntilDisconnect === true, 'the drain asked again');
    await untilTrue(() => hub.state.workflows.get(wf.id)!.workOrders.later!.attempt === null, 'the offer declined');
    release.resolve();
    await closed;
    expect((await wf.getWorkOrder('later')).declinedBy).toEqual([]);
    expect(pooled(hub, 'worker-5')?.stats.declined).toBe(0);
  });

  it('asks for its drain again while the hub cannot store it, so that what it declines meanwhile is not held against it', async () => {
    const dataDir = tempDir();
    const store = new FailingStore(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
    const hub = await startHub({ dataDir }, { store });
    const { wf, leaving, release } = await runningJob(hub, 'worker-4', { userQuery: 'a drain refused while the disk is full' });
    store.failing = true;
    const closed = leaving.close({ finish: true });
    // The drain's write refused (UNAVAILABLE), then stored once writes work again.
    await store.refused.promise;
    // Rolled back (the hub gives up on the write and answers UNAVAILABLE) before writes work again.
    await untilTrue(() => hub.state.agents?.['worker-4']?.status === 'busy', 'the refused drain rolled back');
    store.failing = false;
    await untilTrue(() => hub.state.agents?.['worker-4']?.drainingUntilDisconnect === true, 'the drain asked again and stored');
    release.resolve();
    await closed;
    expect((await untilOrder(hub, wf.id, 'running', 'completed')).attempts).toBe(1);
  });
});
