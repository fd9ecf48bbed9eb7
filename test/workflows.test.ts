import { describe, expect, it } from 'vitest';
import { HubError } from '../client-sdk/index.ts';
import { control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { rawGet } from './helpers/http.ts';
import { codeOf } from './helpers/errors.ts';
import { compareCreation } from '../shared/schemas/workflow.ts';

type Page = { items: Array<{ id: string }>; nextCursor: string | null };

/** The ids of every page of a list, following nextCursor. */
async function idsOfAllPages(page: (cursor: string | undefined) => Promise<Page>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const reply = await page(cursor);
    seen.push(...reply.items.map((item) => item.id));
    cursor = reply.nextCursor ?? undefined;
  } while (cursor);
  return seen;
}

describe('workflows over the network', () => {
  it('creates many workflows with their config, lists them a page at a time and gets one', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const created = [];
    for (let i = 0; i < 25; i++) {
      created.push(
        await client.createWorkflow({
          userQuery: `query ${i}`,
          outputFolder: `/tmp/out/${i}`,
          config: { enableAutoDocumentation: i % 2 === 0, documentationInterval: 60, maxConcurrentAgents: 5, enableDataValidation: false },
        }),
      );
    }
    const seen = await idsOfAllPages((cursor) => client.listWorkflows(cursor ? { limit: 10, cursor } : { limit: 10 }));
    // Oldest first; those created in the same millisecond by id (their ids are random).
    const documents = await Promise.all(created.map((w) => w.get()));
    expect(seen).toEqual(documents.sort((x, y) => compareCreation(x.createdAt, x.id, y.createdAt, y.id)).map((w) => w.id));
    const fourth = await created[4]!.get();
    expect(fourth).toMatchObject({
      userQuery: 'query 4',
      outputFolder: '/tmp/out/4',
      status: 'pending',
      config: { enableAutoDocumentation: true, documentationInterval: 60, maxConcurrentAgents: 5, enableDataValidation: false },
    });
  });

  it('fills config defaults and filters the list by status', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const a = await client.createWorkflow({ userQuery: 'a' });
    await client.createWorkflow({ userQuery: 'b' });
    await a.start();
    expect((await a.get()).config).toEqual({ enableAutoDocumentation: false, documentationInterval: 300, maxConcurrentAgents: null, enableDataValidation: true });
    const running = await client.listWorkflows({ status: 'in_progress' });
    expect(running.items.map((w) => w.id)).toEqual([a.id]);
  });

  // Which transitions are legal, and that a refused one changes nothing: test/domain/workflows.test.ts.
  it('answers each lifecycle change with the new status, and an illegal one with INVALID_TRANSITION and no new version', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'lifecycle' });
    expect(await codeOf(wf.complete())).toBe('INVALID_TRANSITION');
    expect((await wf.summary()).version).toBe(1);
    expect((await wf.start()).status).toBe('in_progress');
    expect((await wf.complete()).status).toBe('completed');

    const failing = await client.createWorkflow({ userQuery: 'fails' });
    await failing.start();
    expect((await failing.fail('upstream API down')).status).toBe('failed');
    expect((await failing.get()).failureReason).toBe('upstream API down');
    const cancelled = await client.createWorkflow({ userQuery: 'cancelled' });
    expect((await cancelled.cancel('not needed')).status).toBe('cancelled');
  });

  // Their times and durations on a manual clock: test/domain/workflows.test.ts.
  it('adds, starts, completes and fails execution steps, answering with the step, and refuses with codes', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'steps' });
    expect(await codeOf(wf.addStep({ name: 'orphan', workOrderId: 'wo-1' }))).toBe('NOT_FOUND');
    expect(Object.keys((await wf.get()).steps)).toEqual([]);
    await wf.createWorkOrder({ id: 'wo-1', taskType: 't' });
    const load = await wf.addStep({ name: 'load data', agentId: 'loader', workOrderId: 'wo-1' });
    expect(load).toMatchObject({ status: 'pending', startedAt: null, agentId: 'loader', workOrderId: 'wo-1' });
    const started = await wf.startStep(load.id);
    expect(started.status).toBe('running');
    const finished = await wf.completeStep(load.id, { rows: 1200 });
    expect(finished).toMatchObject({ status: 'completed', result: { rows: 1200 } });
    const clean = await wf.addStep({ name: 'clean', start: true });
    const failed = await wf.failStep(clean.id, 'schema mismatch');
    expect(failed).toMatchObject({ status: 'failed', error: 'schema mismatch' });
    expect(await codeOf(wf.completeStep(clean.id))).toBe('INVALID_TRANSITION');
    expect(await codeOf(wf.startStep('no-such-step'))).toBe('NOT_FOUND');
  });

  it('says in a refusal for a bad payload which field is wrong and why, and changes nothing', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'bad payloads' });
    const version = (await wf.summary()).version;
    const error = await wf.updateProgress('s', 150).then(
      () => undefined,
      (refused: HubError) => refused,
    );
    expect(error).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/^invalid workflow\.progress payload: percentage: Too big: expected number to be <=100$/) });
    expect(error!.issues).toEqual([{ path: ['percentage'], message: 'Too big: expected number to be <=100' }]);
    expect((await wf.summary()).version).toBe(version);
  });

  // How an objective's status follows its progress, and a KPI's bounded history: test/domain/workflows.test.ts.
  it('adds and updates objectives and KPIs, answering with the item; a KPI measures against its target', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'goals' });
    const objective = await wf.addObjective({ name: 'Data Analysis', description: 'Complete analysis', target: '100% completion', priority: 'high' });
    expect(objective).toMatchObject({ status: 'pending', progress: 0, priority: 'high' });
    expect(await wf.updateObjective(objective.id, { progress: 60 })).toMatchObject({ progress: 60 });
    expect(await wf.updateObjective(objective.id, { status: 'failed' })).toMatchObject({ status: 'failed' });

    const speed = await wf.addKpi({ name: 'Processing Speed', target: 1000, unit: 'records/minute' });
    expect(speed).toMatchObject({ direction: 'higher', current: null, met: false });
    await wf.recordKpi(speed.id, 800);
    expect(await wf.recordKpi(speed.id, 1100)).toMatchObject({ current: 1100, met: true });
  });

  it('keeps the last kpiHistoryLimit values of a KPI, also once a restart lowered the limit', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir, kpiHistoryLimit: 5 });
    const wf = await (await control(first)).createWorkflow({ userQuery: 'history' });
    const kpi = await wf.addKpi({ name: 'rate', target: 10 });
    for (let value = 1; value <= 6; value++) await wf.recordKpi(kpi.id, value);
    expect((await wf.get()).kpis[kpi.id]!.history.map((s) => s.value)).toEqual([2, 3, 4, 5, 6]);
    await first.close();

    const again = (await control(await startHub({ dataDir, kpiHistoryLimit: 2 }))).workflow(wf.id);
    expect(await again.recordKpi(kpi.id, 7)).toMatchObject({ current: 7, samples: 7, history: [{ value: 6 }, { value: 7 }] });
  });

  // How overall progress derives from the stages: test/domain/workflows.test.ts.
  it('refuses stage progress outside 0..100 with VALIDATION and no new version', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'progress' });
    await wf.start();
    await wf.updateProgress('data_loading', 25);
    const versionBefore = wf.version;
    expect(await codeOf(wf.updateProgress('data_loading', 101))).toBe('VALIDATION');
    expect(await codeOf(wf.updateProgress('data_loading', -1))).toBe('VALIDATION');
    const stage = await wf.updateProgress('analysis', 75);
    expect(stage).toMatchObject({ name: 'analysis', progress: 75, completedAt: null });
    expect(wf.version).toBe(versionBefore + 1);
  });

  it('summarises status, durations, counts, progress, objectives and KPIs', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'summary' });
    await wf.start();
    const objective = await wf.addObjective({ name: 'A', target: 'done' });
    await wf.addObjective({ name: 'B' });
    await wf.updateObjective(objective.id, { progress: 100 });
    const kpi = await wf.addKpi({ name: 'Accuracy', target: 0.95, unit: 'accuracy' });
    await wf.recordKpi(kpi.id, 0.97);
    await wf.addKpi({ name: 'Recall', target: 0.9 });
    const step = await wf.addStep({ name: 's', start: true });
    await wf.completeStep(step.id);
    await wf.updateProgress('loading', 100);
    await wf.createWorkOrders([{ id: 'a', taskType: 'nobody' }, { id: 'b', taskType: 'nobody', dependencies: ['a'] }, { id: 'c', taskType: 'nobody' }]);
    await wf.cancelWorkOrder('c');
    const summary = await wf.summary();
    expect(summary).toMatchObject({
      id: wf.id,
      status: 'in_progress',
      progress: 100,
      workOrderCounts: { pending: 0, blocked: 1, queued: 1, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 1 },
      steps: { total: 1, completed: 1 },
      objectives: { total: 2, completed: 1, pending: 1 },
      kpis: { total: 2, met: 1 },
    });
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(summary.version).toBe(wf.version);
  });

  it('never reports 100% progress, in its summary or its report, while one of its 20,002 orders is still queued', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'big', userQuery: 'almost done' });
    await wf.start();
    // Nobody takes these task types: `root` and `left` stay queued, the others wait for `root` and fail with it.
    await wf.createWorkOrders([{ id: 'root', taskType: 'nobody' }, { id: 'left', taskType: 'nobody' }]);
    for (let at = 0; at < 20_000; at += 1000) {
      await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `d${at + i}`, taskType: 'nobody', dependencies: ['root'] })));
    }
    await wf.cancelWorkOrder('root', 'not needed');
    // 20,001 of 20,002 ended: 99.995 %, which rounded to 100.
    const summary = await wf.summary();
    expect(summary.workOrderCounts).toMatchObject({ queued: 1, cancelled: 1, failed: 20_000 });
    expect({ status: summary.status, orderProgress: summary.orderProgress, progress: summary.progress }).toEqual({ status: 'in_progress', orderProgress: 99.99, progress: 99.99 });
    const report = await rawGet(hub.url, '/api/workflows/big/report.md', TOKENS.admin);
    expect(report.body).toContain('**Overall progress:** 99.9%');
  }, 60_000);

  it('replies with the state as the change left it, even when a later change follows in the same tick', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const created = client.connection.request('workflow.create', { id: 'same-tick', userQuery: 'q' });
    const started = client.connection.request('workflow.start', { workflowId: 'same-tick' });
    expect((await created).workflow).toMatchObject({ status: 'pending', startedAt: null });
    expect((await created).version).toBe(1);
    expect(await started).toMatchObject({ status: 'in_progress', version: 2 });
  });

  it('answers a malformed payload with VALIDATION and the issues, and stays up', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const conn = client.connection;
    const bad = await codeOf(conn.request('workflow.create', { userQuery: '' }));
    expect(bad).toBe('VALIDATION');
    try {
      await conn.request('workflow.create', { userQuery: 'x', config: { maxConcurrentAgents: -1 } } as never);
    } catch (error) {
      expect((error as HubError).issues?.[0]?.path).toEqual(['config', 'maxConcurrentAgents']);
    }
    expect(await codeOf(conn.request('workflow.create', { userQuery: 'x', extra: 1 } as never))).toBe('VALIDATION');
    expect((await client.listWorkflows()).items).toHaveLength(0);
  });

  it('answers a payload of many wrong values with its first 100 issues and the count of the others, not an answer many times the request', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'many wrong values' });
    // 40 orders of 100 dependencies that are not ids: 4,000 issues, all counted.
    const some = Array.from({ length: 40 }, () => ({ taskType: 't', dependencies: Array(100).fill(1) }));
    const error = await client.connection.request('workOrder.createMany', { workflowId: wf.id, orders: some } as never).catch((e: HubError) => e);
    expect(error).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/; and 3997 more$/) });
    expect((error as HubError).issues).toHaveLength(100);
    expect((error as HubError).issues![99]).toEqual({ path: ['orders', 0, 'dependencies', 99], message: 'Invalid input: expected string, received number' });
    // 1,000 such orders: 100,000 issues from 0.3 MB, past FULLY_CHECKED_VALUES: the check stops at the first.
    const many = Array.from({ length: 1000 }, () => ({ taskType: 't', dependencies: Array(100).fill(1) }));
    const stopped = await client.connection.request('workOrder.createMany', { workflowId: wf.id, orders: many } as never).catch((e: HubError) => e);
    expect(stopped).toMatchObject({
      code: 'VALIDATION',
      message: 'invalid workOrder.createMany payload: orders.0.dependencies.0: Invalid input: expected string, received number; checking stopped there (over 5000 values)',
      issues: [{ path: ['orders', 0, 'dependencies', 0], message: 'Invalid input: expected string, received number' }],
    });
    // zod names every unknown key in one message: it is cut.
    const unknown = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`key${i}`, 0]));
    const refused = await client.connection.request('workflow.create', { userQuery: 'x', ...unknown } as never).catch((e: HubError) => e);
    expect((refused as HubError).issues).toEqual([{ path: [], message: expect.stringMatching(/^Unrecognized keys: "key0", .{900,}…$/) }]);
    expect((refused as HubError).message.length).toBeLessThan(1100);
    // Cut where a pair of surrogates would be split (the message's prefix is 19 characters): the pair goes whole.
    const emoji = await client.connection.request('workflow.create', { userQuery: 'x', ['😀'.repeat(600)]: 0 } as never).catch((e: HubError) => e);
    const cut = (emoji as HubError).issues![0]!.message;
    expect(cut).toMatch(/^Unrecognized key: "😀+…$/u);
    expect(/\p{Cs}/u.test(cut) || /\p{Cs}/u.test((emoji as HubError).message)).toBe(false);
    expect((await wf.listWorkOrders()).items).toEqual([]);
  });
});
