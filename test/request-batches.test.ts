import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Ack } from '../shared/envelope.ts';
import { HubError } from '../shared/errors.ts';
import { agent, control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { rawAgent, rawAgentOnStartedWorkflow, refOf } from './helpers/raw-agent.ts';
import { deferred, untilOrder } from './helpers/wait.ts';

/** What a request settled with: its value, or the error it rejected with; 'pending' if it has not settled by the next turn of the event loop. */
async function settledByNextTurn(request: Promise<unknown>): Promise<unknown> {
  const outcome = request.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  return Promise.race([outcome, new Promise((resolve) => setImmediate(() => resolve('pending')))]);
}

/** What each ack of a batch says: 'ok' or its error code. */
const outcomes = (acks: Ack<unknown>[]) => acks.map((ack) => (ack.ok ? 'ok' : ack.error.code));

describe('a batch of requests in one message (raw protocol)', () => {
  it('serves each request as if it came alone, in order, and acks them together', async () => {
    const { wf, worker } = await rawAgentOnStartedWorkflow('raw-1', 'batches');
    await wf.createWorkOrder({ id: 'one', taskType: 't' });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    const ref = refOf(offer.assignment);

    const reply = await worker.request('batch', [
      ['task.progress', { ...ref, progress: 40 }],
      ['task.progress', { ...ref, progress: 'half' }],
      ['no.such', {}],
      ['batch', [['task.progress', { ...ref, progress: 60 }]]],
      ['task.complete', { ...ref, result: 'done' }],
      ['task.progress', { ...ref, progress: 90 }],
    ]);
    expect(reply.ok).toBe(true);
    expect(outcomes(reply.data)).toEqual(['ok', 'VALIDATION', 'VALIDATION', 'VALIDATION', 'ok', 'STALE_ATTEMPT']);
    expect(reply.data[0].data).toEqual({ version: expect.any(Number) });
    expect(reply.data[2].error.message).toBe('unknown event no.such on /agent');
    // A batch is not a request of the namespace: one inside another runs nothing.
    expect(reply.data[3].error.message).toBe('unknown event batch on /agent');
    expect(reply.data[4].data).toMatchObject({ state: 'completed' });
    const order = await wf.getWorkOrder('one');
    expect(order).toMatchObject({ state: 'completed', result: 'done', progress: 100, attempts: 1 });
  });

  it('refuses a batch that is not a list of 1 to 100 [event, payload] pairs as a whole, running none of it', async () => {
    const { wf, worker } = await rawAgentOnStartedWorkflow('raw-1', 'bad batches');
    await wf.createWorkOrder({ id: 'one', taskType: 't' });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    const progress = ['task.progress', { ...refOf(offer.assignment), progress: 70 }];

    for (const payload of ['x', null, [], Array.from({ length: 101 }, () => progress), [progress, ['task.progress']], [progress, [7, {}]], [progress, 'task.progress']]) {
      const reply = await worker.request('batch', payload);
      expect(reply).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^invalid batch payload: /) } });
    }
    expect(await wf.getWorkOrder('one')).toMatchObject({ state: 'running', progress: 0 });
    // The same batch, well formed, runs.
    expect(outcomes((await worker.request('batch', [progress])).data)).toEqual(['ok']);
    expect(await wf.getWorkOrder('one')).toMatchObject({ progress: 70 });
  });

  it('takes a rate-limit token for every request in it', async () => {
    const hub = await startHub({ rateLimit: { perSecond: 0.001, burst: 5 } });
    // Registering takes the first token.
    const worker = await rawAgent(hub.url, 'limited', ['t']);
    const heartbeat = ['agent.heartbeat', { attemptTokens: [] }];
    const reply = await worker.request('batch', Array.from({ length: 6 }, () => heartbeat));
    expect(outcomes(reply.data)).toEqual(['ok', 'ok', 'ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED']);
  });

  it('is served on every namespace: a control client creates two workflows in one message', async () => {
    const hub = await startHub();
    const socket = io(`${hub.url}/control`, { auth: { token: TOKENS.admin }, transports: ['websocket'], forceNew: true, reconnection: false });
    onTestFinished(() => void socket.disconnect());
    const reply = await socket.emitWithAck('batch', [
      ['workflow.create', { userQuery: 'first of two' }],
      ['workflow.create', { userQuery: 'second of two' }],
    ]);
    expect(outcomes(reply.data)).toEqual(['ok', 'ok']);
    const listed = await (await control(hub)).listWorkflows();
    expect(listed.items.map((w) => w.userQuery).sort()).toEqual(['first of two', 'second of two']);
  });

  it('answers a read with the state as it was read, not as a later request of the batch changed it', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'read, then started' });
    await wf.createWorkOrder({ id: 'job', taskType: 'nobody' });
    const socket = io(`${hub.url}/control`, { auth: { token: TOKENS.admin }, transports: ['websocket'], forceNew: true, reconnection: false });
    onTestFinished(() => void socket.disconnect());
    const reply = await socket.emitWithAck('batch', [
      ['workflow.get', { workflowId: 'wf' }],
      ['workOrder.get', { workflowId: 'wf', workOrderId: 'job' }],
      ['workflow.start', { workflowId: 'wf' }],
    ]);
    const [read, order, start] = reply.data as Array<Ack<unknown>>;
    expect(start).toMatchObject({ ok: true, data: { version: 3 } });
    expect(read).toMatchObject({ ok: true, data: { version: 2, workflow: { status: 'pending', startedAt: null } } });
    expect(order).toMatchObject({ ok: true, data: { version: 2, item: { state: 'pending' } } });
  });

  it('starts the requests that follow a batch waiting on a read after the batch’s, in the order they came', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'order of requests' });
    // Over 256 KB: its report is rendered in the worker thread, a read that takes a while.
    await wf.createWorkOrders([0, 1].map((i) => ({ id: `big${i}`, taskType: 'nobody', input: { blob: 'x'.repeat(200_000) } })));
    const socket = io(`${hub.url}/control`, { auth: { token: TOKENS.admin }, transports: ['websocket'], forceNew: true, reconnection: false });
    onTestFinished(() => void socket.disconnect());
    const batch = socket.emitWithAck('batch', [
      ['workflow.report', { workflowId: 'wf', format: 'markdown' }],
      ['workflow.start', { workflowId: 'wf' }],
    ]);
    const complete = socket.emitWithAck('workflow.complete', { workflowId: 'wf' });
    const [batchReply, completeReply] = await Promise.all([batch, complete]);
    expect(outcomes(batchReply.data)).toEqual(['ok', 'ok']);
    expect(completeReply).toMatchObject({ ok: true, data: { status: 'completed' } });
  });
});

describe('the TypeScript SDK batching requests', () => {
  it('sends the reports its tasks make in one turn of the event loop as one message', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'reports together' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'trio', agentType: 'w', maxConcurrentTasks: 3, logger: null });
    const sent: Array<[string, unknown]> = [];
    worker.connection.socket.onAnyOutgoing((event: string, payload: unknown) => sent.push([event, payload]));
    const go = deferred();
    let started = 0;
    await worker.onTask('t', async (_task, ctx) => {
      if (++started === 3) go.resolve();
      await go.promise;
      await ctx.progress(50);
      return { result: 'ok' };
    });
    await wf.createWorkOrders(['a', 'b', 'c'].map((id) => ({ id, taskType: 't' })));
    for (const id of ['a', 'b', 'c']) expect(await untilOrder(hub, wf.id, id, 'completed')).toMatchObject({ result: 'ok', progress: 100 });

    const progressBatches = sent.filter(([event, payload]) => event === 'batch' && (payload as Array<[string]>).every(([inner]) => inner === 'task.progress'));
    expect(progressBatches).toHaveLength(1);
    expect((progressBatches[0]![1] as Array<[string, { workOrderId: string; progress: number }]>).map(([, p]) => [p.workOrderId, p.progress]).sort()).toEqual([
      ['a', 50],
      ['b', 50],
      ['c', 50],
    ]);
    expect(sent.filter(([event]) => event === 'task.progress')).toHaveLength(0);
  });

  it('sends a control client’s quick writes of one turn as one message, and a read alone, in order', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'control batches' });
    const sent: string[] = [];
    client.connection.socket.onAnyOutgoing((event: string, payload: unknown) => {
      sent.push(event === 'batch' ? `batch(${(payload as Array<[string]>).map(([inner]) => inner).join(', ')})` : event);
    });
    const [, , read] = await Promise.all([
      wf.createWorkOrder({ id: 'a', taskType: 't' }),
      wf.createWorkOrder({ id: 'b', taskType: 't' }),
      wf.get(),
      wf.createWorkOrder({ id: 'c', taskType: 't' }),
    ]);
    expect(sent).toEqual(['batch(workOrder.create, workOrder.create)', 'workflow.get', 'workOrder.create']);
    // The read came after the two creates made before it (it may see the one after it: that one was not awaited).
    expect(Object.keys(read.workOrders)).toEqual(expect.arrayContaining(['a', 'b']));
    expect(Object.keys((await wf.get()).workOrders)).toEqual(['a', 'b', 'c']);
  });

  it('sends a control client’s requests that read files (data registrations and updates) alone, never in a batch', async () => {
    const root = tempDir('switchboard-data-');
    const hub = await startHub({ dataRoots: [root] });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'files go alone' });
    const path = (name: string) => {
      writeFileSync(join(root, name), `${name}\n`.repeat(1000));
      return join(root, name);
    };
    await wf.addDataReference({ id: 'old', path: path('old.csv') });
    const sent: string[] = [];
    client.connection.socket.onAnyOutgoing((event: string, payload: unknown) => {
      sent.push(event === 'batch' ? `batch(${(payload as Array<[string]>).map(([inner]) => inner).join(', ')})` : event);
    });
    // The hub hashes each file before it answers: batched, the answers of the creates beside them would wait for it.
    await Promise.all([
      wf.createWorkOrder({ id: 'a', taskType: 't' }),
      wf.addDataReference({ id: 'one', path: path('one.csv') }),
      wf.addDataReferences([{ id: 'two', path: path('two.csv') }]),
      wf.updateDataReference('old', { path: path('new.csv') }),
      wf.createWorkOrder({ id: 'b', taskType: 't' }),
      wf.createWorkOrder({ id: 'c', taskType: 't' }),
    ]);
    expect(sent).toEqual(['workOrder.create', 'data.register', 'data.registerMany', 'data.update', 'batch(workOrder.create, workOrder.create)']);
  });

  it('sends an agent’s data registrations and completions with outputs alone: the hub hashes the files they name first', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'data goes alone' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'quartet', agentType: 'w', maxConcurrentTasks: 4, logger: null });
    const batched: Array<[string, { outputs?: unknown[] }]> = [];
    const alone: string[] = [];
    worker.connection.socket.onAnyOutgoing((event: string, payload: unknown) => {
      if (event === 'batch') batched.push(...(payload as Array<[string, { outputs?: unknown[] }]>));
      else alone.push(event);
    });
    const go = deferred();
    let started = 0;
    await worker.onTask('t', async (task, ctx) => {
      if (++started === 4) go.resolve();
      await go.promise;
      // In one turn: two report progress, one registers data, one completes with an output.
      if (task.workOrderId === 'register') await ctx.addDataReference({ id: 'registered', path: 's3://lake/registered.csv' });
      else if (task.workOrderId === 'outputs') return { result: 'done', outputs: [{ id: 'made', path: 's3://lake/made.csv' }] };
      else await ctx.progress(50);
      return { result: 'done' };
    });
    await wf.createWorkOrders(['p1', 'p2', 'register', 'outputs'].map((id) => ({ id, taskType: 't' })));
    for (const id of ['p1', 'p2', 'register', 'outputs']) expect(await untilOrder(hub, wf.id, id, 'completed')).toMatchObject({ result: 'done' });
    expect(batched.filter(([event]) => event === 'task.progress')).toHaveLength(2);
    expect(batched.filter(([event, payload]) => event === 'data.register' || (payload.outputs?.length ?? 0) > 0)).toEqual([]);
    expect(alone).toEqual(expect.arrayContaining(['data.register', 'task.complete']));
    expect((await wf.get()).workOrders.outputs?.outputs).toEqual(['made']);
  });

  it('sends the requests of a batch too big for the hub to read again one by one, and they succeed', async () => {
    const hub = await startHub({ maxHttpBufferSize: 32 * 1024 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'batch over the size' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'pair', agentType: 'w', maxConcurrentTasks: 2, logger: null });
    const sent: string[] = [];
    worker.connection.socket.onAnyOutgoing((event: string) => sent.push(event));
    const go = deferred();
    let started = 0;
    await worker.onTask('t', async (task, ctx) => {
      if (++started === 2) go.resolve();
      await go.promise;
      // Each under the hub's 32 KiB, the two together over it.
      await ctx.checkpointNow({ order: task.workOrderId, rows: 'r'.repeat(20_000) });
      return { result: 'saved' };
    });
    await wf.createWorkOrders(['a', 'b'].map((id) => ({ id, taskType: 't' })));
    for (const id of ['a', 'b']) expect(await untilOrder(hub, wf.id, id, 'completed')).toMatchObject({ result: 'saved', attempts: 1 });
    // The batch went first, was not read, and each went again alone.
    expect(sent.filter((event) => event === 'batch' || event === 'task.progress').slice(0, 3)).toEqual(['batch', 'task.progress', 'task.progress']);
  });
});

describe('the TypeScript SDK batching, when the connection goes or a batch cannot be encoded', () => {
  it('fails a request still queued for its batch at once with DISCONNECTED when the connection is closed', async () => {
    const hub = await startHub();
    const worker = await agent(hub, { agentId: 'closing', agentType: 'w', logger: null });
    // Made in the same turn as close(): queued for the batch of this turn, not sent yet.
    const pending = worker.connection.request('agent.heartbeat', { attemptTokens: [] }, { timeoutMs: 600_000 });
    await worker.connection.close();
    const outcome = await settledByNextTurn(pending);
    expect(outcome).not.toBe('pending');
    expect((outcome as { error: unknown }).error).toBeInstanceOf(HubError);
    expect((outcome as { error: HubError }).error.code).toBe('DISCONNECTED');
  });

  it('never sends a request queued when the connection dropped ahead of the re-registration on the next connection', async () => {
    const hub = await startHub();
    const worker = await agent(hub, { agentId: 'dropping', agentType: 'w', logger: null });
    const sent: string[] = [];
    worker.connection.socket.onAnyOutgoing((event: string, payload: unknown) => {
      sent.push(event === 'batch' ? `batch(${(payload as Array<[string]>).map(([e]) => e).join(',')})` : event);
    });
    const reregistered = new Promise<void>((resolve) => worker.connection.socket.once('connect', () => resolve()));
    // As the existing control test does: the request is made, then the transport goes away in the same turn.
    const pending = worker.connection.request('agent.status', { note: 'queued at the drop' });
    worker.connection.socket.io.engine.close();
    const outcome = await pending.then(
      () => 'answered',
      (error: HubError) => error.code,
    );
    await reregistered;
    // Before batching it failed with DISCONNECTED (the connection dropped before the answer); it must
    // not sit in socket.io's buffer and go out on the next connection before agent.register.
    expect(outcome).toBe('DISCONNECTED');
    expect(sent[0]).not.toBe('agent.status');
  });

  it('keeps the order of requests when a batch that cannot be encoded is sent again one by one', async () => {
    const hub = await startHub();
    const admin = await control(hub);
    const worker = await agent(hub, { agentId: 'ordered', agentType: 'w', logger: null });
    const requests = await new Promise<Promise<unknown>[]>((resolve) => {
      // A timer's callback, as an agent's own code runs from (not a promise continuation).
      setImmediate(() => {
        const first = worker.connection.request('agent.status', { note: 'first' });
        // A toJSON that throws: the SDK's own check takes it as it serialises, so only the batch's encoding finds it.
        const bad = worker.connection.request('agent.status', { note: { toJSON: () => { throw new TypeError('not today'); } } as unknown as string });
        // Another timeout: the batch of the two before goes at once, and this one is queued for the next.
        const third = worker.connection.request('agent.status', { note: 'third' }, { timeoutMs: 60_000 });
        resolve([first, bad, third]);
      });
    });
    const [first, bad, third] = (await Promise.allSettled(requests)) as [PromiseSettledResult<unknown>, PromiseSettledResult<unknown>, PromiseSettledResult<unknown>];
    expect(first.status).toBe('fulfilled');
    expect(bad).toMatchObject({ status: 'rejected', reason: expect.any(TypeError) });
    expect(third.status).toBe('fulfilled');
    // The request made last is applied last.
    const [listed] = (await admin.listAgents()).filter((a) => a.id === 'ordered');
    expect(listed?.note).toBe('third');
  });
});
