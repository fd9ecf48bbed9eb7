import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { CreateWorkOrdersInput } from '../shared/schemas/work-order.ts';
import type { Actor } from '../server/domain/machinery/actor.ts';
import { AgentTransport } from '../server/transport/agent.ts';
import { ReportRenderer } from '../server/reports/report-renderer.ts';
import { Transfers } from '../server/transport/transfers.ts';
import { PatchStream } from '../server/transport/patch-stream.ts';
import type { Namespace } from 'socket.io';
import { WorkflowReads } from '../server/workflow-reads.ts';
import { EmbeddedStore, type RunningHub } from '../server/index.ts';
import type { HubState } from '../server/domain/machinery/state.ts';
import { LoginThrottle } from '../server/transport/login-throttle.ts';
import { agent, control, GRANTS, monitor, startHub, tempDir } from './helpers/hub.ts';
import { HeldWrites } from './helpers/held-writes.ts';
import { logRecorder } from './helpers/log-recorder.ts';
import { connectRaw } from './helpers/raw-socket.ts';
import { deferred, untilTrue } from './helpers/wait.ts';

// Leak tests: a hub that runs for months must come back to its baseline once clients have come and
// gone. They look at the sizes of the hub's own structures (a property of cost, so internals are fair game).

/** The methods as they are, before any test wraps them. */
const offer = Transfers.prototype.offer;
const read = WorkflowReads.prototype.read;

const ADMIN: Actor = { role: 'admin', name: 'leak-test' };

/** The instances of a class the hub made, caught as one of its methods is first called. */
function instancesOf<T extends object>(proto: T, method: keyof T & string): Set<T> {
  const seen = new Set<T>();
  const original = proto[method] as (...args: unknown[]) => unknown;
  const target = proto as unknown as Record<string, (...args: unknown[]) => unknown>;
  vi.spyOn(target, method).mockImplementation(function (this: T, ...args: unknown[]) {
    seen.add(this);
    return original.apply(this, args);
  });
  return seen;
}

/** A private field of an object, for counting entries. */
const field = <T>(object: object, name: string): T => (object as Record<string, T>)[name]!;

/** A workflow whose JSON is past INLINE_REPLY_BYTES (1 MB): it is answered as a transfer. */
async function bigWorkflow(hub: RunningHub, id: string): Promise<void> {
  await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id, userQuery: 'big' }), actor: ADMIN });
  for (let batch = 0; batch < 2; batch++) {
    const orders = Array.from({ length: 1000 }, (_, i) => ({ id: `o${batch}-${i}`, taskType: 't', input: { text: 'x'.repeat(700) } }));
    await hub.dispatch({ type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId: id, orders }), actor: ADMIN });
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('what the hub holds per connection', () => {
  it('holds nothing for a connection that closed before its big reply was ready', async () => {
    const transfers = instancesOf(Transfers.prototype, 'offer');
    vi.spyOn(WorkflowReads.prototype, 'read');
    const offered = deferred();
    const log = logRecorder('info');
    const hub = await startHub({}, { logger: log.logger });
    await bigWorkflow(hub, 'big');

    // Baseline: one connection that reads a big reply whole, then leaves.
    const reader = await connectRaw(hub.url, 'control');
    const whole = await reader.emitWithAck('workflow.get', { workflowId: 'big' });
    expect(whole.data.transfer.parts).toBeGreaterThan(1);
    for (let part = 0; part < whole.data.transfer.parts; part++) expect((await reader.emitWithAck('transfer.read', { id: whole.data.transfer.id, part })).ok).toBe(true);
    const [instance] = [...transfers];
    const sizes = () => ({ open: field<Map<string, unknown>>(instance!, 'open').size, bySocket: field<Map<string, unknown>>(instance!, 'bySocket').size, held: field<number>(instance!, 'held') });
    const readerId = reader.id;
    reader.disconnect();
    await log.until('client disconnected', { socketId: readerId });
    expect(sizes()).toEqual({ open: 0, bySocket: 0, held: 0 });

    // 20 connections that ask for the big workflow and close before it is ready.
    const gone: ClientSocket[] = [];
    // workflow.get waits once it has begun, so that each connection closes while its reply is under way.
    const slow = deferred();
    const entered = deferred();
    let entries = 0;
    vi.mocked(WorkflowReads.prototype.read).mockImplementation(async function (this: WorkflowReads, ...args: Parameters<WorkflowReads['read']>) {
      if (++entries === 20) entered.resolve();
      await slow.promise;
      return read.apply(this, args) as never;
    } as never);
    let offers = 0;
    vi.mocked(Transfers.prototype.offer).mockImplementation(function (this: Transfers, ...args: Parameters<Transfers['offer']>) {
      try {
        return offer.apply(this, args);
      } finally {
        if (++offers === 20) offered.resolve();
      }
    });
    for (let i = 0; i < 20; i++) {
      const socket = await connectRaw(hub.url, 'control');
      void socket.emitWithAck('workflow.get', { workflowId: 'big' }).catch(() => undefined);
      gone.push(socket);
    }
    await entered.promise;
    for (const socket of gone) {
      const id = socket.id ?? '';
      socket.disconnect();
      await log.until('client disconnected', { socketId: id });
    }
    slow.resolve();
    await offered.promise;
    await hub.settle();
    expect(sizes()).toEqual({ open: 0, bySocket: 0, held: 0 });
  });
});

describe('what concurrent big reads hold', () => {
  it('serialises a big workflow once for workflow.get requests at one version, and holds its bytes once', async () => {
    const transfers = instancesOf(Transfers.prototype, 'offer');
    const hub = await startHub();
    await bigWorkflow(hub, 'big');
    const reader = await connectRaw(hub.url, 'control');
    // Asked together (a Promise.all of gets): each serialisation held a copy until its transfer was offered.
    const replies = await Promise.all(Array.from({ length: 20 }, () => reader.emitWithAck('workflow.get', { workflowId: 'big' })));
    const [instance] = [...transfers];
    const { bytes } = replies[0].data.transfer as { bytes: number };
    expect(new Set(replies.map((r) => r.data.version)).size).toBe(1);
    expect(field<Map<unknown, unknown>>(instance!, 'bodies').size).toBe(1);
    expect(field<number>(instance!, 'held')).toBe(bytes);
    // And every reader reads the same bytes.
    const last = replies[19].data.transfer as { id: string; parts: number };
    let read = 0;
    for (let part = 0; part < last.parts; part++) read += ((await reader.emitWithAck('transfer.read', { id: last.id, part })).data.data as Buffer).length;
    expect(read).toBe(bytes);
  });
});

describe('what the hub holds per agent', () => {
  it('lets an agent go whose old connection closed while a new one’s registration failed', async () => {
    const transports = instancesOf(AgentTransport.prototype, 'handlers');
    const log = logRecorder('info');
    const dataDir = tempDir();
    const store = new HeldWrites(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
    const hub = await startHub({ dataDir, graceMs: 50, forgetAgentsAfterMs: 100, sweepIntervalMs: 20 }, { store, logger: log.logger });
    onTestFinished(() => store.release());
    const [transport] = [...transports];
    const sockets = field<Map<string, unknown>>(transport!, 'sockets');
    const work = (hub.state as unknown as HubState).work;
    const closeAndWait = async (socket: ClientSocket) => {
      const id = socket.id;
      socket.disconnect();
      await log.until('client disconnected', { socketId: id });
    };

    // The agent is connected over `old`; it registers again over `fresh` (its old connection half-open, as after a network change).
    const old = await connectRaw(hub.url, 'agent');
    expect((await old.emitWithAck('agent.register', { agentId: 'roaming', agentType: 'w' })).ok).toBe(true);
    store.hold();
    const fresh = await connectRaw(hub.url, 'agent');
    // Something changed (its capabilities), so the registration is written.
    const again = fresh.emitWithAck('agent.register', { agentId: 'roaming', agentType: 'w', capabilities: ['gpu'] });
    await store.holding.promise;
    // The old connection closes while the registration is being written; then the write fails, and the agent gives up.
    await closeAndWait(old);
    store.fail();
    expect((await again).error.code).toBe('UNAVAILABLE');
    await closeAndWait(fresh);

    // Nothing is connected: the agent goes offline after graceMs and is forgotten after forgetAgentsAfterMs.
    expect(sockets.size).toBe(0);
    await untilTrue(() => Object.keys(hub.state.agents ?? {}).length === 0, 'the agent forgotten');
    expect({ connected: work.connected.size, disconnected: work.disconnected.size, available: work.availableAgents().size, offline: work.offline.size }).toEqual({
      connected: 0,
      disconnected: 0,
      available: 0,
      offline: 0,
    });
  });
});

describe('what the hub holds per finished workflow', () => {
  it('keeps no rendered report of a workflow deleted from the archive', async () => {
    const renderers = instancesOf(ReportRenderer.prototype, 'render');
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 20 });
    await bigWorkflow(hub, 'reported');
    const client = await connectRaw(hub.url, 'control');
    const report = await client.emitWithAck('workflow.report', { workflowId: 'reported', format: 'json' });
    expect(report.ok).toBe(true);
    const [renderer] = [...renderers];
    const kept = field<Map<string, unknown>>(renderer!, 'kept');
    expect(kept.size).toBe(1);
    await hub.dispatch({ type: 'workflow.cancel', input: { workflowId: 'reported' }, actor: ADMIN });
    await untilTrue(() => !hub.state.workflows.has('reported'), 'the workflow archived');
    const pruned = await client.emitWithAck('archive.prune', { olderThanMs: 0 });
    expect(pruned.data.removed.map((item: { workflowId: string }) => item.workflowId)).toEqual(['reported']);
    expect(kept.size).toBe(0);
  });
});

describe('what the hub holds per finished work order', () => {
  it('holds the overall timeouts of the orders still unfinished, not of those that ended first, and still ends the unfinished ones when theirs is due', async () => {
    const T0 = 1_767_261_600_000;
    const clock = { now: T0 };
    // The background sweep is left to its longest interval: the test sweeps when it moves the clock.
    const hub = await startHub({ sweepIntervalMs: 60_000 }, { clock: () => clock.now });
    const sweep = () => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'leak-test' } });
    const work = (hub.state as unknown as HubState).work;
    const client = await control(hub);
    const HOUR = { overallMs: 3_600_000 };
    const waiting = await client.createWorkflow({ id: 'waiting', userQuery: 'orders nobody takes' });
    await waiting.createWorkOrders(Array.from({ length: 5 }, (_, i) => ({ id: `w${i}`, taskType: 'nobody-serves-this', timeouts: HOUR })));
    await waiting.start();
    // 200 orders an agent completes, and a workflow of 300 cancelled: all long before their hour.
    const worker = await agent(hub, { agentId: 'worker', agentType: 'w', maxConcurrentTasks: 10, logger: null });
    await worker.onTask('echo', () => ({ result: 'done' }));
    const done = await client.createWorkflow({ id: 'done', userQuery: 'orders completed' });
    await done.start();
    await done.createWorkOrders(Array.from({ length: 200 }, (_, i) => ({ id: `d${i}`, taskType: 'echo', timeouts: HOUR })));
    const cancelled = await client.createWorkflow({ id: 'cancelled', userQuery: 'orders cancelled with their workflow' });
    await cancelled.createWorkOrders(Array.from({ length: 300 }, (_, i) => ({ id: `c${i}`, taskType: 'nobody-serves-this', timeouts: HOUR })));
    await cancelled.start();
    await cancelled.cancel();
    await untilTrue(() => hub.state.workflows.get('done')!.workOrderCounts.completed === 200, 'every order completed');

    expect(work.deadlines.size).toBe(5);
    const versions = { done: hub.state.versions.get('done'), cancelled: hub.state.versions.get('cancelled') };
    clock.now = T0 + 3_600_000;
    expect(await sweep()).toMatchObject({ timedOut: 5, more: false });
    const orders = Object.values(hub.state.workflows.get('waiting')!.workOrders);
    expect(orders.map((order) => [order.state, order.error])).toEqual(orders.map(() => ['failed', 'overall timeout of 3600000 ms exceeded']));
    // The ended orders' timers changed nothing.
    expect({ done: hub.state.versions.get('done'), cancelled: hub.state.versions.get('cancelled') }).toEqual(versions);
    expect(work.deadlines.size).toBe(0);
  });
});

describe('what the hub holds per monitor', () => {
  it('comes back to its rooms and streams once monitors that followed documents, views and everything have left', async () => {
    const streams = instancesOf(PatchStream.prototype, 'subscribe');
    const hub = await startHub();
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'watched', userQuery: 'q' }), actor: ADMIN });
    const first = await monitor(hub);
    await first.subscribe('watched');
    const [stream] = [...streams];
    const nsp = field<Namespace>(stream!, 'nsp');
    const docs = field<Map<string, unknown>>(stream!, 'docs');
    await first.close();
    await untilTrue(() => nsp.sockets.size === 0, 'the first monitor gone');
    const baseline = { sockets: 0, rooms: nsp.adapter.rooms.size, docs: docs.size };
    const monitors = await Promise.all(Array.from({ length: 50 }, () => monitor(hub)));
    await Promise.all(
      monitors.map(async (m, i) => {
        await m.subscribe('watched');
        await m.subscribe('@agents');
        if (i % 2) await m.subscribeAll();
        await m.subscribe('watched', { view: { kind: 'summary' } });
      }),
    );
    expect(nsp.sockets.size).toBe(50);
    await Promise.all(monitors.map((m) => m.close()));
    await untilTrue(() => nsp.sockets.size === 0, 'every monitor gone');
    // Two streams more, whatever the number of monitors: @agents (followed once, kept like every document's) and the
    // summary view's, until it has been idle for VIEW_IDLE_MS.
    expect({ sockets: nsp.sockets.size, rooms: nsp.adapter.rooms.size, docs: docs.size }).toEqual({ ...baseline, docs: baseline.docs + 2 });
  });
});

describe('what the hub holds for a monitor that follows everything', () => {
  it('keeps no room for what it unsubscribed from once that left memory, and follows a workflow made again with its id', async () => {
    const streams = instancesOf(PatchStream.prototype, 'subscribe');
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const follower = await connectRaw(hub.url, 'monitor');
    expect((await follower.emitWithAck('subscribeAll', { versions: {} })).ok).toBe(true);
    const archived = async (id: string) => {
      await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id, userQuery: 'q' }), actor: ADMIN });
      // A view and the workflow, followed and let go while it is live, as a dashboard does.
      expect((await follower.emitWithAck('subscribe', { doc: id, view: { kind: 'summary' } })).ok).toBe(true);
      expect((await follower.emitWithAck('unsubscribe', { doc: `${id}/summary` })).ok).toBe(true);
      expect((await follower.emitWithAck('unsubscribe', { doc: id })).ok).toBe(true);
      await hub.dispatch({ type: 'workflow.cancel', input: { workflowId: id }, actor: ADMIN });
      await untilTrue(() => !hub.state.workflows.has(id), `${id} archived`);
    };
    await archived('first');
    const [stream] = [...streams];
    const rooms = field<Namespace>(stream!, 'nsp').adapter.rooms;
    const baseline = rooms.size;
    for (let i = 0; i < 5; i++) await archived(`w${i}`);
    // Unsubscribed from once archived: nothing to leave out either.
    expect((await follower.emitWithAck('unsubscribe', { doc: 'w0' })).ok).toBe(true);
    expect(rooms.size).toBe(baseline);
    // Deleted from the archive and made again: a new workflow, which a follower of everything follows.
    const control = await connectRaw(hub.url, 'control');
    expect((await control.emitWithAck('archive.prune', { olderThanMs: 0 })).ok).toBe(true);
    const created = new Promise<unknown>((resolve) => follower.on('patch', (message: { doc: string }) => message.doc === 'w1' && resolve(message)));
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w1', userQuery: 'again' }), actor: ADMIN });
    expect(await created).toMatchObject({ doc: 'w1', from: 0 });
  });
});

describe('what the hub holds per token', () => {
  it('forgets the tokens that logged in once a reload revoked them', async () => {
    const throttles = instancesOf(LoginThrottle.prototype, 'passed');
    const file = join(tempDir(), 'tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS), { mode: 0o600 });
    const hub = await startHub({ tokensFile: file, tokens: undefined });
    const login = async (token: string) => {
      const socket = io(`${hub.url}/agent`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
      await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
      socket.disconnect();
    };
    await login(GRANTS[1]!.token);
    const [throttle] = [...throttles];
    // The hashes of the tokens that logged in, over every address.
    const known = () => [...field<Map<string, { known: Set<string> }>>(throttle!, 'clients').values()].reduce((sum, client) => sum + client.known.size, 0);
    const baseline = known();
    // Short-lived tokens, as a deployment that gives each job its own: created, used, revoked.
    for (let i = 0; i < 10; i++) {
      const token = `job-token-${i}`;
      writeFileSync(file, JSON.stringify([...GRANTS, { token, role: 'agent', name: `job-${i}` }]));
      await hub.reloadTokens();
      await login(token);
      expect(known()).toBe(baseline + 1);
      writeFileSync(file, JSON.stringify(GRANTS));
      await hub.reloadTokens();
    }
    expect(known()).toBe(baseline);
    // A token still in force is still known: a guesser at its address does not lock it out.
    await login(GRANTS[1]!.token);
    expect(known()).toBe(baseline);
  });
});
