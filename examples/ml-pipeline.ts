// A machine-learning pipeline: a trainer and an evaluator agent, an objective ("95% accuracy") and a
// KPI with a numeric target. Round one trains briefly and misses the target; round two trains
// longer, meets it, and the objective is completed. The Python package's "Machine Learning Pipeline".
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAgent, connectControl, connectMonitor } from 'switchboard/client';
import { z } from 'zod';
import { useHub } from './support/hub.ts';

/** What the trainer and the evaluator return; the control side reads them back with the same schemas. */
const Trained = z.object({ threshold: z.number() });
const Metrics = z.object({ accuracy: z.number() });

/** A one-feature dataset: label = x > 0.62, with every 25th label flipped as noise. Deterministic. */
function dataset(n: number, step: number, offset: number): Array<{ x: number; y: boolean }> {
  return Array.from({ length: n }, (_, i) => {
    const x = (offset + i * step) % 1;
    return { x, y: (x > 0.62) !== (i % 25 === 0) };
  });
}
const accuracy = (threshold: number, data: Array<{ x: number; y: boolean }>) => data.filter((p) => (p.x > threshold) === p.y).length / data.length;

const hub = await useHub();
const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
const monitor = await connectMonitor({ url: hub.url, token: hub.tokens.monitor });
const trainer = await connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'trainer', agentType: 'ml', capabilities: ['sklearn', 'tensorflow'] });
const evaluator = await connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'evaluator', agentType: 'evaluation', capabilities: ['metrics', 'validation'] });
try {
  // Training: each epoch halves the grid step around the best threshold so far (a stand-in for real training).
  await trainer.onTask('train', { input: z.object({ epochs: z.number().int().min(1), round: z.number().int() }) }, async (task, ctx) => {
    const { epochs, round } = task.input;
    const train = dataset(200, 0.618034, 0);
    let best = 0.5;
    for (let epoch = 1, step = 0.25; epoch <= epochs; epoch++, step /= 2) {
      for (const candidate of [best - step, best, best + step]) if (accuracy(candidate, train) > accuracy(best, train)) best = candidate;
      await ctx.progress((100 * epoch) / epochs, `epoch ${epoch}/${epochs}`, { epoch, threshold: best });
    }
    const path = join(hub.dataRoot, `model-v${round}.json`);
    writeFileSync(path, JSON.stringify({ threshold: best }));
    return { result: { threshold: best }, outputs: [{ id: `model-v${round}`, path, dataType: 'model', metadata: { epochs, trainAccuracy: accuracy(best, train) } }] };
  });
  await evaluator.onTask('evaluate', (task) => {
    const model = task.inputs[0]!;
    const { threshold } = Trained.parse(JSON.parse(readFileSync(model.path, 'utf8')));
    const metrics = { accuracy: accuracy(threshold, dataset(100, 0.7548777, 0.1)) };
    const path = join(hub.dataRoot, `metrics-${model.id}.json`);
    writeFileSync(path, JSON.stringify(metrics));
    return { result: metrics, outputs: [{ id: `metrics-${model.id}`, path, dataType: 'json', tags: ['metrics'] }] };
  });
  console.log('agents: trainer (sklearn, tensorflow), evaluator (metrics, validation)');

  const wf = await control.createWorkflow({ userQuery: 'Train a classifier to 95% accuracy', config: { enableDataValidation: hub.validatesData } });
  const live = await monitor.subscribe(wf.id);
  const objective = await wf.addObjective({ name: 'Model Training', description: 'Train ML model', target: '95% accuracy', priority: 'high' });
  const kpi = await wf.addKpi({ name: 'Model Accuracy', description: 'Current model performance', target: 0.95, unit: 'accuracy', direction: 'higher' });
  await wf.start();

  for (const [round, epochs] of [[1, 1], [2, 6]] as const) {
    await wf.createWorkOrders([
      { id: `train-${round}`, taskType: 'train', requirements: ['sklearn'], input: { epochs, round } },
      { id: `evaluate-${round}`, taskType: 'evaluate', requirements: ['metrics'], dependencies: [`train-${round}`], inputs: [`model-v${round}`] },
    ]);
    await live.until((state) => state.workOrderCounts.completed === 2 * round, { what: `round ${round} to finish` });
    const trained = await wf.getWorkOrder(`train-${round}`);
    const { accuracy: measured } = Metrics.parse((await wf.getWorkOrder(`evaluate-${round}`)).result);
    const recorded = await wf.recordKpi(kpi.id, measured);
    const progress = Math.min(100, Math.round((100 * measured) / kpi.target));
    await wf.updateObjective(objective.id, recorded.met ? { status: 'completed', progress: 100 } : { status: 'in_progress', progress });
    console.log(`round ${round}: ${epochs} epoch(s), threshold ${Trained.parse(trained.result).threshold.toFixed(4)} ` +
      `(checkpoint ${JSON.stringify(trained.checkpoint)}); test accuracy ${measured.toFixed(2)} → KPI ${recorded.met ? 'met' : 'not met'}`);
  }

  const lineage = await wf.downstream('model-v2');
  const edge = lineage.edges[0]!;
  console.log(`lineage: ${edge.from} → ${edge.to} (${edge.operation}, work order ${edge.workOrderId}); ` +
    `model-v2 produced by ${(await wf.getDataReference('model-v2')).provenance.agentId}`);
  await wf.complete();
  const summary = await wf.summary();
  const item = summary.kpis.items[0]!;
  console.log(`KPI ${item.name}: ${item.current} (target ${item.target}, ${item.direction} is better) ${item.met ? 'met' : 'not met'}; ` +
    `objective ${summary.objectives.items[0]!.status}`);
  console.log(`ml pipeline: ${summary.status}`);
} finally {
  await Promise.all([trainer.close(), evaluator.close(), monitor.close(), control.close()]);
  await hub.close();
}
