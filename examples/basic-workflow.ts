// Basic workflow: objectives, KPIs, steps, stage progress, a summary and reports in three formats.
// The Python package's "Basic Workflow Creation" (WorkflowManager + DocumentationEngine).
import { basename } from 'node:path';
import { connectControl } from 'switchboard/client';
import { useHub } from './support/hub.ts';

const hub = await useHub();
try {
  // `await using` closes the client when this block ends, however it ends.
  await using control = await connectControl({ url: hub.url, token: hub.tokens.admin });
  const wf = await control.createWorkflow({ userQuery: 'Analyze customer data and generate insights' });
  console.log(`created workflow ${wf.id}`);
  await wf.start();
  console.log('started: pending → in_progress');

  const objective = await wf.addObjective({
    name: 'Data Analysis',
    description: 'Complete analysis of customer data',
    target: '100% completion',
    priority: 'high',
  });
  const kpi = await wf.addKpi({ name: 'Processing Speed', description: 'Data processing rate', target: 1000, unit: 'records/minute' });
  console.log(`objective "${objective.name}" (target ${objective.target}); KPI "${kpi.name}" (target ${kpi.target} ${kpi.unit})`);

  for (const [stage, records] of [['data_loading', 800], ['analysis', 1250]] as const) {
    const step = await wf.addStep({ name: stage, start: true });
    await wf.updateProgress(stage, 50);
    const recorded = await wf.recordKpi(kpi.id, records);
    await wf.updateProgress(stage, 100);
    const finished = await wf.completeStep(step.id, { records });
    console.log(`step ${stage}: ${finished.status} in ${finished.durationMs} ms; KPI now ${recorded.current} (${recorded.met ? 'met' : 'not met'})`);
  }
  await wf.updateObjective(objective.id, { status: 'completed', progress: 100 });
  await wf.complete();

  const summary = await wf.summary();
  console.log(`summary: ${summary.status}, progress ${summary.progress}%, ${summary.steps.completed}/${summary.steps.total} steps, ` +
    `${summary.objectives.completed}/${summary.objectives.total} objectives completed, ${summary.kpis.met}/${summary.kpis.total} KPIs met`);

  const written = await wf.generateReports();
  console.log(`reports of version ${written.version}: ${written.files.map((f) => basename(f.path)).join(', ')}`);
  const markdown = await wf.report('markdown');
  console.log(`markdown report starts with: ${markdown.body.split('\n')[0]}`);
  console.log(`basic workflow ${wf.id}: ${summary.status}`);
} finally {
  await hub.close();
}
