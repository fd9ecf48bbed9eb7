import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { contractJsonSchema } from '../shared/json-schema.ts';
import type { Actor } from '../server/domain/machinery/actor.ts';
import type { RunningHub } from '../server/index.ts';
import { control, crashCopy, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { hubErrorOf } from './helpers/errors.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';
import { rawAgent, refOf, type Offer } from './helpers/raw-agent.ts';
import { connectRaw } from './helpers/raw-socket.ts';
import { untilOrder, untilTrue } from './helpers/wait.ts';
import { createLogger, readableLines } from '../server/logger.ts';

const ADMIN: Actor = { role: 'admin', name: 'embedding-app' };
const sweep = (hub: RunningHub) => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });

/** Accepts an offer and completes it: the agent's one slot is free again. */
async function run(worker: Awaited<ReturnType<typeof rawAgent>>, offer: Offer): Promise<void> {
  offer.ack({ accept: true });
  expect((await worker.request('task.complete', { ...refOf(offer.assignment), result: 'done' })).ok).toBe(true);
}

describe('workflow.pause and workflow.resume', () => {
  it('offers a free agent none of a paused workflow’s orders while it takes another workflow’s; resumed, they are offered in queue order and each completes once, as a monitor sees', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const paused = await client.createWorkflow({ id: 'wf-paused', userQuery: 'burns an API budget' });
    await paused.start();
    await paused.createWorkOrder({ id: 'p1', taskType: 't' });
    const watcher = await monitor(hub);
    const live = await watcher.subscribe(paused.id);
    const view = await watcher.subscribe(paused.id, { view: { kind: 'summary' } });
    const reply = await paused.pause('API budget');
    expect(reply).toMatchObject({ status: 'in_progress', paused: { by: 'test-admin', reason: 'API budget' } });
    expect((await live.until((w) => w.paused?.reason === 'API budget', { what: 'the pause mirrored' })).paused).toEqual(reply.paused);
    expect((await view.until((v) => v.paused !== null, { what: 'the pause in the summary view' })).paused).toEqual(reply.paused);

    const worker = await rawAgent(hub.url, 'a', ['t']);
    const other = await client.createWorkflow({ id: 'wf-other', userQuery: 'goes on' });
    await other.start();
    await other.createWorkOrder({ id: 'o1', taskType: 't' });
    // The free agent's first offer is the other workflow's order, not the older p1.
    const first = await worker.nextOffer();
    expect(first.assignment).toMatchObject({ workflowId: 'wf-other', workOrderId: 'o1' });
    await paused.createWorkOrder({ id: 'p2', taskType: 't', priority: 'high' });
    await run(worker, first);
    await other.createWorkOrder({ id: 'o2', taskType: 't' });
    const second = await worker.nextOffer();
    expect(second.assignment).toMatchObject({ workflowId: 'wf-other', workOrderId: 'o2' });
    await run(worker, second);
    expect((await paused.summary()).workOrderCounts).toMatchObject({ queued: 2, offered: 0, running: 0 });

    expect(await paused.resume()).toMatchObject({ status: 'in_progress', paused: null });
    // Queue order: p2 (high) before the older p1 (normal).
    const resumed = await worker.nextOffer();
    expect(resumed.assignment).toMatchObject({ workflowId: 'wf-paused', workOrderId: 'p2', attempt: 1 });
    await run(worker, resumed);
    const last = await worker.nextOffer();
    expect(last.assignment).toMatchObject({ workflowId: 'wf-paused', workOrderId: 'p1', attempt: 1 });
    await run(worker, last);
    const done = await live.until((w) => w.workOrderCounts.completed === 2, { what: 'both orders completed' });
    expect(done.paused).toBeNull();
    expect((await view.until((v) => v.workOrderCounts.completed === 2, { what: 'both orders completed in the view' })).paused).toBeNull();
    expect(['p1', 'p2'].map((id) => done.workOrders[id]!.history.length)).toEqual([1, 1]);
    expect(worker.offers).toHaveLength(0);
    expect(done.agents['a']).toMatchObject({ assigned: 2, completed: 2 });
  });

  for (const stop of ['crash', 'clean stop'] as const) {
    it(`keeps a workflow paused across a restart (${stop}): a free agent is offered another workflow’s order and none of its own until it is resumed`, async () => {
      const dataDir = tempDir();
      const hub = await startHub({ dataDir });
      const client = await control(hub);
      const wf = await client.createWorkflow({ id: 'wf-paused', userQuery: 'paused, then restarted' });
      await wf.start();
      await wf.createWorkOrder({ id: 'job', taskType: 't' });
      await wf.pause('maintenance');
      const other = await client.createWorkflow({ id: 'wf-other', userQuery: 'goes on' });
      await other.start();
      await other.createWorkOrder({ id: 'theirs', taskType: 't' });
      let restartedDir = dataDir;
      if (stop === 'crash') restartedDir = crashCopy(dataDir);
      await hub.close();

      const again = await startHub({ dataDir: restartedDir });
      expect(again.state.workflows.get('wf-paused')?.paused).toMatchObject({ by: 'test-admin', reason: 'maintenance' });
      const worker = await rawAgent(again.url, 'a', ['t']);
      const offer = await worker.nextOffer();
      expect(offer.assignment).toMatchObject({ workflowId: 'wf-other', workOrderId: 'theirs' });
      await run(worker, offer);
      await sweep(again);
      expect(again.state.workflows.get('wf-paused')?.workOrders['job']?.state).toBe('queued');
      expect(worker.offers).toHaveLength(0);

      await (await control(again)).workflow('wf-paused').resume();
      const resumed = await worker.nextOffer();
      expect(resumed.assignment).toMatchObject({ workflowId: 'wf-paused', workOrderId: 'job', attempt: 1 });
      await run(worker, resumed);
      expect(await untilOrder(again, 'wf-paused', 'job', 'completed')).toMatchObject({ attempts: 1 });
    });
  }

  it('answers a pause sent again, or a resume of a running workflow, with its state and the version unchanged; an ended workflow is INVALID_TRANSITION, and is no longer paused', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'idempotent' });
    const notPaused = await wf.resume();
    expect(notPaused).toEqual({ version: hub.state.versions.get(wf.id), status: 'pending', paused: null });
    const first = await wf.pause();
    expect(first.paused).toMatchObject({ by: 'test-admin', reason: null });
    expect(await wf.pause('again')).toEqual(first);
    expect(hub.state.versions.get(wf.id)).toBe(first.version);
    // Started paused: its order is queued, not offered.
    await wf.start();
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    expect((await wf.summary()).paused).toEqual(first.paused);
    expect((await wf.report('markdown')).body).toContain(`**Paused:** since ${new Date(first.paused!.at).toISOString()} by test-admin (its work orders are not offered)`);
    expect((await wf.report('html')).body).toContain('<div class="figure">in_progress (paused)</div><div class="caption">status</div>');
    expect((await client.listWorkflows()).items[0]).toMatchObject({ id: wf.id, paused: first.paused });

    await wf.cancel('superseded');
    expect((await wf.summary()).paused).toBeNull();
    const version = hub.state.versions.get(wf.id);
    for (const call of [() => wf.pause(), () => wf.resume()]) expect((await hubErrorOf(call())).code).toBe('INVALID_TRANSITION');
    expect(hub.state.versions.get(wf.id)).toBe(version);
    expect((await hubErrorOf(client.workflow('wf-none').pause())).code).toBe('NOT_FOUND');
  });

  it('counts an order’s wait for an agent in the assignment latency metric from its resume, not through the pause', async () => {
    let now = Date.now();
    const hub = await startHub({}, { clock: () => now });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'paused for an hour' });
    await wf.start();
    await wf.createWorkOrder({ id: 'held', taskType: 't' });
    await wf.pause('overnight');
    now += 3_600_000;
    await wf.resume();
    now += 2_000;
    const worker = await rawAgent(hub.url, 'a', ['t']);
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('held');
    const metrics = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } })).text();
    const value = (name: string) => Number(metrics.split('\n').find((line) => line.startsWith(`${name} `))?.split(' ')[1]);
    expect(value('switchboard_assignment_latency_seconds_count')).toBe(1);
    // The two seconds since the resume, not the hour before it.
    expect(value('switchboard_assignment_latency_seconds_sum')).toBe(2);
  });

  it('tells the operator log who paused and resumed which workflow, once each', async () => {
    const log = logRecorder();
    const hub = await startHub({}, { logger: log.logger });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'logged' });
    await wf.start();
    await wf.createWorkOrder({ id: 'job', taskType: 'nobody' });
    await wf.pause('budget');
    await wf.pause('budget');
    await wf.resume();
    await wf.resume();
    const paused = log.find('workflow paused: its work orders are not offered until it is resumed');
    expect(paused).toEqual([expect.objectContaining({ level: LEVEL.info, workflowId: wf.id, by: 'test-admin', reason: 'budget', queued: 1 })]);
    const resumed = log.find('workflow resumed: its queued work orders are offered again');
    expect(resumed).toEqual([expect.objectContaining({ level: LEVEL.info, workflowId: wf.id, by: 'test-admin', queued: 1 })]);
  });

  it('shows a pause’s reason in the readable log a terminal gets as text: the escape sequences a client wrote in it reach no terminal', async () => {
    const shown: string[] = [];
    const hub = await startHub({}, { logger: createLogger('info', readableLines({ write: (text: string) => shown.push(text) })) });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'paused with an escape in its reason' });
    await wf.pause('budget\x1b]0;retitled\x07\nsecond line');
    await untilTrue(() => shown.some((line) => line.includes('workflow paused')), 'the pause logged');
    const line = shown.find((text) => text.includes('workflow paused'))!;
    expect(line).toContain('reason=budget?]0;retitled? second line');
    expect(line.slice(0, -1)).not.toMatch(/[\u0000-\u001f]/);
  });

  it('over the raw protocol: acks { version, status, paused } as the published JSON Schema says, and refuses a payload without workflowId with VALIDATION, as hub.dispatch does', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'raw pause' });
    const socket = await connectRaw(hub.url, 'control');
    for (const [event, payload, paused] of [
      ['workflow.pause', { workflowId: wf.id, reason: 'why' }, { at: expect.any(Number), by: 'test-admin', reason: 'why' }],
      ['workflow.resume', { workflowId: wf.id }, null],
    ] as const) {
      const ack = await socket.emitWithAck(event, payload);
      expect(ack).toMatchObject({ ok: true, data: { version: expect.any(Number), status: 'pending', paused } });
      const published = z.fromJSONSchema({ $defs: contractJsonSchema().$defs, $ref: `#/$defs/control:${event}:reply` } as never);
      expect(published.safeParse(ack.data).success).toBe(true);
      const bad = await socket.emitWithAck(event, { reason: 'no workflow' });
      expect(bad).toMatchObject({ ok: false, error: { code: 'VALIDATION', issues: expect.arrayContaining([expect.objectContaining({ path: ['workflowId'] })]) } });
      await expect(hub.dispatch({ type: event, input: { reason: 'x' } as never, actor: ADMIN })).rejects.toMatchObject({ code: 'VALIDATION' });
    }
    expect(hub.state.workflows.get(wf.id)?.paused).toBeNull();
  });
});
