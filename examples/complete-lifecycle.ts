// The complete lifecycle, from creation to reports: objectives and KPIs, agents and a DAG of work
// orders, steps and stage progress, a live monitor, completion, a summary and the reports; then the
// error path: an illegal transition refused with a code, and a workflow failed with its reason.
import { basename } from 'node:path';
import { connectAgent, connectControl, connectMonitor, HubError } from 'switchboard/client';
import { z } from 'zod';
import { useHub } from './support/hub.ts';

/** What the load task returns; the control side reads it back with the same schema. */
const Loaded = z.object({ loaded: z.number() });

const hub = await useHub();
const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
const monitor = await connectMonitor({ url: hub.url, token: hub.tokens.monitor });
const worker = await connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'etl-worker', agentType: 'etl', capabilities: ['sql', 'csv'], maxConcurrentTasks: 2 });
try {
  // 1. Create and configure (workflow_config in the Python package).
  const wf = await control.createWorkflow({
    userQuery: 'Nightly sales consolidation',
    config: { maxConcurrentAgents: 2, enableDataValidation: hub.validatesData },
  });
  const live = await monitor.subscribe(wf.id);
  const objective = await wf.addObjective({ name: 'Consolidate sales', target: 'all regions loaded', priority: 'critical' });
  const kpi = await wf.addKpi({ name: 'Rows loaded', target: 3000, unit: 'rows' });
  console.log(`1. created ${wf.id} with objective "${objective.name}" and KPI "${kpi.name}" (config: at most 2 agents)`);

  // 2. Agents: one handler per task type; the step and the stage progress follow the work.
  const rowsByRegion: Record<string, number> = { emea: 1200, amer: 1500, apac: 900 };
  await worker.onTask('extract', { input: z.object({ region: z.string() }) }, async (task, ctx) => {
    const { region } = task.input;
    await ctx.progress(50, `reading ${region}`);
    return { result: { region, rows: rowsByRegion[region] } };
  });
  await worker.onTask<unknown, z.infer<typeof Loaded>>('load', () => ({ result: { loaded: Object.values(rowsByRegion).reduce((a, b) => a + b, 0) } }));
  console.log('2. agent etl-worker handles extract and load');

  // 3. Work orders: three extracts in parallel, then one load that depends on all of them.
  const orders = await wf.createWorkOrders([
    ...Object.keys(rowsByRegion).map((region) => ({ id: `extract-${region}`, taskType: 'extract', requirements: ['sql'], input: { region } })),
    { id: 'load', taskType: 'load', requirements: ['csv'], dependencies: Object.keys(rowsByRegion).map((region) => `extract-${region}`), priority: 'high' as const },
  ]);
  console.log(`3. created ${orders.length} work orders: ${orders.map((o) => `${o.id} (${o.state})`).join(', ')}`);

  // 4. Start: the orders are released; a step records the run.
  const step = await wf.addStep({ name: 'consolidate', description: 'extract three regions, then load', start: true });
  await wf.start();
  await wf.updateProgress('extract', 0);
  const done = await live.until((state) => state.workOrderCounts.completed === orders.length, { what: 'every work order to complete' });
  await wf.updateProgress('extract', 100);
  const load = await wf.getWorkOrder('load');
  const { loaded } = Loaded.parse(load.result);
  await wf.updateProgress('load', 100);
  await wf.completeStep(step.id, { loaded });
  console.log(`4. all ${done.workOrderCounts.completed} work orders completed; load reported ${loaded} rows`);

  // 5. Measure and close the objective, then complete the workflow.
  const measured = await wf.recordKpi(kpi.id, loaded);
  await wf.updateObjective(objective.id, { status: 'completed', progress: 100 });
  await wf.complete();
  const summary = await wf.summary();
  console.log(`5. ${summary.status} in ${summary.durationMs} ms: KPI ${measured.current}/${measured.target} ${measured.met ? 'met' : 'not met'}, ` +
    `${summary.objectives.completed}/${summary.objectives.total} objective(s), ${summary.steps.completed}/${summary.steps.total} step(s), progress ${summary.progress}%`);

  // 6. Documentation: report.json, report.md and report.html in the workflow's outputFolder.
  const written = await wf.generateReports();
  console.log(`6. reports of version ${written.version}: ${written.files.map((f) => basename(f.path)).join(', ')}`);

  // 7. Errors are values with codes: a completed workflow cannot start again.
  try {
    await wf.start();
  } catch (error) {
    if (!(error instanceof HubError)) throw error;
    console.log(`7. start() again is refused: ${error.code} (${error.message})`);
  }
  const broken = await control.createWorkflow({ userQuery: 'Load a source that is down' });
  await broken.start();
  await broken.fail('upstream source unavailable');
  const failed = await broken.summary();
  console.log(`   a second workflow failed with its reason: ${failed.status}, "${failed.failureReason}"`);
  console.log(`complete lifecycle ${wf.id}: ${summary.status}`);
} finally {
  await Promise.all([worker.close(), monitor.close(), control.close()]);
  await hub.close();
}
