import { describe, expect, it } from 'vitest';
import { HubError } from '../client-sdk/index.ts';
import { control, startHub } from './helpers/hub.ts';
import { codeOf } from './helpers/errors.ts';

type Page = { items: Array<{ id: string }>; nextCursor: string | null };

/** The ids of every page of a list, following nextCursor; `afterPage` runs after each page. */
async function idsOfAllPages(page: (cursor: string | undefined) => Promise<Page>, afterPage?: (seen: string[]) => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const reply = await page(cursor);
    seen.push(...reply.items.map((item) => item.id));
    cursor = reply.nextCursor ?? undefined;
    await afterPage?.(seen);
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
    expect(seen).toEqual(created.map((w) => w.id));
    const fourth = await created[4]!.get();
    expect(fourth).toMatchObject({
      userQuery: 'query 4',
      outputFolder: '/tmp/out/4',
      status: 'pending',
      config: { enableAutoDocumentation: true, documentationInterval: 60, maxConcurrentAgents: 5, enableDataValidation: false },
    });
  });

  it('lists a workflow\'s work orders a page at a time, with orders added meanwhile at the end', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'paging' });
    await wf.createWorkOrders(Array.from({ length: 45 }, (_, i) => ({ id: `o${i}`, taskType: 't' })));
    const seen = await idsOfAllPages(
      (cursor) => wf.listWorkOrders(cursor ? { limit: 20, cursor } : { limit: 20 }),
      async (ids) => ids.length === 20 && wf.createWorkOrder({ id: 'late', taskType: 't' }),
    );
    expect(seen).toEqual([...Array.from({ length: 45 }, (_, i) => `o${i}`), 'late']);
    expect(await codeOf(wf.listWorkOrders({ cursor: 'nope' }))).toBe('VALIDATION');
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

  it('runs the lifecycle and refuses illegal transitions with INVALID_TRANSITION, changing nothing', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'lifecycle' });
    expect(await codeOf(wf.complete())).toBe('INVALID_TRANSITION');
    const pending = await wf.get();
    expect(pending.status).toBe('pending');
    expect(wf.version).toBe(1);
    await wf.start();
    expect((await wf.complete()).status).toBe('completed');
    const versionAfter = wf.version;
    expect(await codeOf(wf.start())).toBe('INVALID_TRANSITION');
    expect(await codeOf(wf.fail('too late'))).toBe('INVALID_TRANSITION');
    const done = await wf.get();
    expect(done.status).toBe('completed');
    expect(wf.version).toBe(versionAfter);

    const failing = await client.createWorkflow({ userQuery: 'fails' });
    await failing.start();
    await failing.fail('upstream API down');
    expect(await failing.get()).toMatchObject({ status: 'failed', failureReason: 'upstream API down' });
    const cancelled = await client.createWorkflow({ userQuery: 'cancelled' });
    await cancelled.cancel('not needed');
    expect((await cancelled.get()).status).toBe('cancelled');
  });

  it('tracks execution steps with timestamps, durations, agent and work order', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'steps' });
    const load = await wf.addStep({ name: 'load data', agentId: 'loader', workOrderId: 'wo-1' });
    expect(load).toMatchObject({ status: 'pending', startedAt: null, agentId: 'loader', workOrderId: 'wo-1' });
    const started = await wf.startStep(load.id);
    expect(started.status).toBe('running');
    const finished = await wf.completeStep(load.id, { rows: 1200 });
    expect(finished.status).toBe('completed');
    expect(finished.durationMs).toBe(finished.endedAt! - finished.startedAt!);
    expect(finished.result).toEqual({ rows: 1200 });
    const clean = await wf.addStep({ name: 'clean', start: true });
    const failed = await wf.failStep(clean.id, 'schema mismatch');
    expect(failed).toMatchObject({ status: 'failed', error: 'schema mismatch' });
    expect(await codeOf(wf.completeStep(clean.id))).toBe('INVALID_TRANSITION');
    expect(await codeOf(wf.startStep('no-such-step'))).toBe('NOT_FOUND');
  });

  it('manages objectives and KPIs with history and target status', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'goals' });
    const objective = await wf.addObjective({ name: 'Data Analysis', description: 'Complete analysis', target: '100% completion', priority: 'high' });
    expect(objective).toMatchObject({ status: 'pending', progress: 0, priority: 'high' });
    expect(await wf.updateObjective(objective.id, { progress: 60 })).toMatchObject({ status: 'in_progress', progress: 60 });
    expect(await wf.updateObjective(objective.id, { status: 'failed' })).toMatchObject({ status: 'failed' });

    const speed = await wf.addKpi({ name: 'Processing Speed', target: 1000, unit: 'records/minute' });
    expect(speed).toMatchObject({ direction: 'higher', current: null, met: false });
    await wf.recordKpi(speed.id, 800);
    const kpi = await wf.recordKpi(speed.id, 1100);
    expect(kpi).toMatchObject({ current: 1100, met: true, samples: 2 });
    expect(kpi.history.map((h) => h.value)).toEqual([800, 1100]);
  });

  it('enforces 0..100 on stage progress and derives overall progress', async () => {
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
    const state = await wf.get();
    expect(state.progress).toBe(50);
    expect(state.stages.data_loading!.progress).toBe(25);
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
    const summary = await wf.summary();
    expect(summary).toMatchObject({
      id: wf.id,
      status: 'in_progress',
      progress: 100,
      steps: { total: 1, completed: 1 },
      objectives: { total: 2, completed: 1, pending: 1 },
      kpis: { total: 2, met: 1 },
    });
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(summary.version).toBe(wf.version);
  });

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
});
