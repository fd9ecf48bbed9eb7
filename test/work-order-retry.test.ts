import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { contractJsonSchema } from '../shared/json-schema.ts';
import type { Actor } from '../server/domain/machinery/actor.ts';
import { agent, control, crashCopy, monitor, startHub, tempDir } from './helpers/hub.ts';
import { hubErrorOf } from './helpers/errors.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';
import { rawAgent, rawAgentOnStartedWorkflow, refOf } from './helpers/raw-agent.ts';
import { connectRaw } from './helpers/raw-socket.ts';
import { untilOrder, untilWorkflow } from './helpers/wait.ts';

const ADMIN: Actor = { role: 'admin', name: 'embedding-app' };

describe('workOrder.retry', () => {
  it('puts an order that failed for good back in the queue: the same agent runs it again, and it completes once, its history kept, counts and stats exact, seen by a monitor', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'retry after a failure' });
    await wf.start();
    let runs = 0;
    const worker = await agent(hub, { agentId: 'w', agentType: 'worker', logger: null });
    await worker.onTask('t', () => {
      if (++runs === 1) throw new Error('disk full');
      return { result: 'done' };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1 });
    expect(await untilOrder(hub, wf.id, 'job', 'failed')).toMatchObject({ error: 'failed after 1 attempt(s): disk full', attempts: 1 });
    const live = await (await monitor(hub)).subscribe(wf.id);

    const retried = await wf.retryWorkOrder('job');
    expect(retried).toMatchObject({ attempts: 1, endedAt: null, retried: { attempts: 1 }, declinedBy: [] });
    expect(['queued', 'offered']).toContain(retried.state);
    const done = await live.until((w) => w.workOrders['job']?.state === 'completed', { what: 'the retried order completed' });
    expect(done.workOrders['job']).toMatchObject({ result: 'done', attempts: 2, retried: { attempts: 1 }, history: [{ number: 1, outcome: 'failed' }, { number: 2, outcome: 'completed' }] });
    expect(runs).toBe(2);

    const state = await wf.get();
    expect(state.workOrderCounts).toMatchObject({ completed: 1, failed: 0, queued: 0, offered: 0, running: 0 });
    expect(state.agents['w']).toMatchObject({ assigned: 2, completed: 1, failed: 1 });
    expect((await client.getAgent('w')).stats).toMatchObject({ completed: 1, failed: 1 });
    // Attempt 2 of the 2 it may start since the retry, not "2/1".
    expect((await wf.report('markdown')).body).toContain('| job | t | completed | normal | 2/2 |');
    expect((await hubErrorOf(wf.retryWorkOrder('job'))).code).toBe('INVALID_TRANSITION');
    expect(runs).toBe(2);
  });

  it('offers an order whose offer lapsed (all_declined) to the same agent again, which completes it', async () => {
    const { hub, wf, worker } = await rawAgentOnStartedWorkflow('gpu', 'one GPU agent stalled');
    await wf.createWorkOrder({ id: 'frame', taskType: 't', timeouts: { acceptMs: 100 } });
    await worker.nextOffer(); // never answered: the agent stalled
    const lapsed = await untilWorkflow(hub, wf.id, (w) => w.workOrders['frame']?.waiting?.reason === 'all_declined', 'the lapsed order marked all_declined');
    expect(lapsed.workOrders['frame']).toMatchObject({ state: 'queued', declinedBy: ['gpu'] });
    expect((await wf.summary()).unservable).toBe(1);

    await wf.retryWorkOrder('frame');
    const offer = await worker.nextOffer();
    expect(offer.assignment).toMatchObject({ workOrderId: 'frame', attempt: 1 });
    offer.ack({ accept: true });
    expect((await worker.request('task.complete', { ...refOf(offer.assignment), result: 'rendered' })).ok).toBe(true);
    expect(await untilOrder(hub, wf.id, 'frame', 'completed')).toMatchObject({ declinedBy: [], waiting: null, result: 'rendered' });
    const summary = await wf.summary();
    expect(summary.unservable).toBe(0);
    expect(summary.workOrderCounts).toMatchObject({ completed: 1, queued: 0 });
  });

  it('tells the operator log who retried which order, once per retry that changed something', async () => {
    const log = logRecorder();
    const hub = await startHub({}, { logger: log.logger });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'logged retries' });
    await wf.start();
    await wf.createWorkOrder({ id: 'job', taskType: 'nobody' });
    await wf.retryWorkOrder('job'); // queued, nothing holding it back: nothing to log
    const worker = await rawAgent(hub.url, 'a', ['nobody']);
    (await worker.nextOffer()).ack({ accept: false, reason: 'not mine' });
    await untilWorkflow(hub, wf.id, (w) => w.workOrders['job']?.declinedBy.length === 1, 'the decline');
    await wf.retryWorkOrder('job');
    const logged = log.find('work order retried by a control client');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: LEVEL.info, workflowId: wf.id, workOrderId: 'job', was: 'queued', attempts: 0, by: 'test-admin' });
  });

  it('refuses with a clear code and changes nothing: a running order, a completed one, an unknown one, a dependent of a failed order', async () => {
    const { hub, wf, worker } = await rawAgentOnStartedWorkflow('a', 'refusals');
    await wf.createWorkOrders([
      { id: 'first', taskType: 't', maxAttempts: 1 },
      { id: 'then', taskType: 't', dependencies: ['first'] },
    ]);
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    await untilOrder(hub, wf.id, 'first', 'running');
    const refused = async (workOrderId: string) => {
      const version = hub.state.versions.get(wf.id);
      const error = await hubErrorOf(wf.retryWorkOrder(workOrderId));
      expect(hub.state.versions.get(wf.id)).toBe(version);
      return error;
    };
    expect(await refused('first')).toMatchObject({ code: 'INVALID_TRANSITION', message: 'work order first is running: only a failed or a queued order can be retried' });
    expect(await refused('then')).toMatchObject({ code: 'INVALID_TRANSITION' });
    expect(await refused('nothing')).toMatchObject({ code: 'NOT_FOUND' });
    expect((await worker.request('task.fail', { ...refOf(offer.assignment), error: 'bad input', retryable: false })).ok).toBe(true);
    await untilOrder(hub, wf.id, 'then', 'failed');
    expect(await refused('then')).toMatchObject({ code: 'CONFLICT', message: expect.stringContaining('its dependency first is failed (retry first first)') });
  });

  it('is journaled: after a crash the retried order is queued with its fresh budget, and an agent completes it', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    const wf = await (await control(hub)).createWorkflow({ id: 'wf-crash', userQuery: 'retry, then crash' });
    await wf.start();
    await wf.createWorkOrder({ id: 'job', taskType: 'later', maxAttempts: 1 });
    const worker = await rawAgent(hub.url, 'a', ['later']);
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    expect((await worker.request('task.fail', { ...refOf(offer.assignment), error: 'oom', retryable: true })).ok).toBe(true);
    await untilOrder(hub, wf.id, 'job', 'failed');
    // Left queued by the retry: the only agent no longer takes work.
    expect((await worker.request('agent.status', { status: 'draining' })).ok).toBe(true);
    const queued = await hub.dispatch({ type: 'workOrder.retry', input: { workflowId: wf.id, workOrderId: 'job' }, actor: ADMIN });
    expect(queued.item).toMatchObject({ state: 'queued', retried: { attempts: 1 } });

    const again = await startHub({ dataDir: crashCopy(dataDir) });
    await hub.close();
    expect(again.state.workflows.get('wf-crash')?.workOrders['job']).toMatchObject({ state: 'queued', attempts: 1, retried: { attempts: 1 }, endedAt: null });
    expect(again.state.workflows.get('wf-crash')?.workOrderCounts).toMatchObject({ queued: 1, failed: 0 });
    const back = await rawAgent(again.url, 'b', ['later']);
    const next = await back.nextOffer();
    expect(next.assignment).toMatchObject({ workOrderId: 'job', attempt: 2 });
    next.ack({ accept: true });
    expect((await back.request('task.complete', refOf(next.assignment))).ok).toBe(true);
    expect(await untilOrder(again, 'wf-crash', 'job', 'completed')).toMatchObject({ attempts: 2 });
  });

  it('over the raw protocol: acks { version, item } as the published JSON Schema says, and refuses a payload without workOrderId with VALIDATION, as hub.dispatch does', async () => {
    const { hub, wf, worker } = await rawAgentOnStartedWorkflow('a', 'raw retry');
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1 });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    expect((await worker.request('task.fail', { ...refOf(offer.assignment), error: 'bad input', retryable: false })).ok).toBe(true);
    await untilOrder(hub, wf.id, 'job', 'failed');
    const socket = await connectRaw(hub.url, 'control');

    const ack = await socket.emitWithAck('workOrder.retry', { workflowId: wf.id, workOrderId: 'job' });
    expect(ack).toMatchObject({ ok: true, data: { version: expect.any(Number), item: { id: 'job', state: 'offered', retried: { attempts: 1 }, attempt: { number: 2 } } } });
    const published = z.fromJSONSchema({ $defs: contractJsonSchema().$defs, $ref: '#/$defs/control:workOrder.retry:reply' } as never);
    expect(published.safeParse(ack.data).success).toBe(true);
    expect((await worker.nextOffer()).assignment).toMatchObject({ workOrderId: 'job', attempt: 2 });

    const bad = await socket.emitWithAck('workOrder.retry', { workflowId: wf.id, reason: 'why' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'VALIDATION', issues: expect.arrayContaining([expect.objectContaining({ path: ['workOrderId'] })]) } });
    await expect(hub.dispatch({ type: 'workOrder.retry', input: { workflowId: wf.id } as never, actor: ADMIN })).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});
