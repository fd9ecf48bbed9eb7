// A research study with data provenance: a real dataset registered with study metadata, an analysis
// agent that runs a permutation test and registers what it produced, a paper draft derived from
// the results, and the lineage and integrity checks that tie them together. The Python package's
// "Data Science Research" (DataInventoryManager with provenance and lineage).
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { connectAgent, connectControl, connectMonitor } from 'switchboard/client';
import { z } from 'zod';
import { useHub } from './support/hub.ts';

/** What the analysis returns; the control side reads it back with the same schema. */
const TestResult = z.object({ observed: z.number(), pValue: z.number(), power: z.number(), permutations: z.number() });

/** mulberry32: a small seeded generator, so every run draws the same numbers. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
/** Standard normal CDF (Abramowitz–Stegun 7.1.26). */
function phi(z: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(z) / Math.SQRT2);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

const hub = await useHub();
const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
const monitor = await connectMonitor({ url: hub.url, token: hub.tokens.monitor });
const statistician = await connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'statistician', agentType: 'analysis', capabilities: ['statistics'] });
try {
  await statistician.onTask('permutation_test', async (task, ctx) => {
    const rows = readFileSync(task.inputs[0]!.path, 'utf8').trim().split('\n').slice(1).map((line) => line.split(','));
    const scores = rows.map(([, , score]) => Number(score));
    const groups = rows.map(([, group]) => group);
    const observed = mean(scores.filter((_, i) => groups[i] === 'treatment')) - mean(scores.filter((_, i) => groups[i] === 'control'));
    const draw = random(7);
    const permutations = 2000;
    let extreme = 0;
    for (let p = 0; p < permutations; p++) {
      const shuffled = [...groups].sort(() => draw() - 0.5);
      const diff = mean(scores.filter((_, i) => shuffled[i] === 'treatment')) - mean(scores.filter((_, i) => shuffled[i] === 'control'));
      if (Math.abs(diff) >= Math.abs(observed)) extreme++;
    }
    const pValue = (extreme + 1) / (permutations + 1);
    const sd = Math.sqrt(mean(scores.map((s) => (s - mean(scores)) ** 2)));
    const power = phi((Math.abs(observed) / sd) * Math.sqrt(rows.length / 4) - 1.96);
    const histogram = join(hub.dataRoot, 'score-histogram.txt');
    writeFileSync(histogram, scores.map((s) => '#'.repeat(Math.round(s / 10))).join('\n'));
    // Registered mid-task: the hub fills in this agent, work order and attempt as its provenance.
    await ctx.addDataReference({ id: 'histogram', path: histogram, dataType: 'text', derivedFrom: [task.inputs[0]!.id], tags: ['figure'] });
    const results = join(hub.dataRoot, 'results.json');
    const result = { observed: Number(observed.toFixed(2)), pValue: Number(pValue.toFixed(4)), power: Number(power.toFixed(2)), permutations };
    writeFileSync(results, JSON.stringify(result, null, 2));
    return { result, outputs: [{ id: 'results', path: results, dataType: 'json', tags: ['results'] }] };
  });

  const wf = await control.createWorkflow({ userQuery: 'Does the treatment raise scores? (EXP001)', config: { enableDataValidation: hub.validatesData } });
  const live = await monitor.subscribe(wf.id);
  const objective = await wf.addObjective({ name: 'Hypothesis Testing', description: 'Test research hypothesis', target: 'p < 0.05' });
  const kpi = await wf.addKpi({ name: 'Statistical Power', description: 'Study statistical power', target: 0.8, unit: 'power' });

  const draw = random(42);
  const participants = Array.from({ length: 100 }, (_, i) => {
    const group = i % 2 === 0 ? 'treatment' : 'control';
    return `P${String(i + 1).padStart(3, '0')},${group},${(group === 'treatment' ? 55 : 50) + Math.round((draw() - 0.5) * 24)}`;
  });
  const dataPath = join(hub.dataRoot, 'research_data.csv');
  writeFileSync(dataPath, ['participant,group,score', ...participants].join('\n') + '\n');
  const data = await wf.addDataReference({
    id: 'research_data',
    path: dataPath,
    description: 'Experimental dataset',
    dataType: 'csv',
    tags: ['raw', 'experiment'],
    metadata: { study_id: 'EXP001', participants: 100 },
  });
  console.log(`registered research_data.csv: ${data.status}, ${data.size ?? '?'} bytes, sha256 ${data.checksum?.slice(0, 16) ?? 'not computed'}, metadata ${JSON.stringify(data.metadata)}`);

  await wf.start();
  await wf.createWorkOrder({ id: 'analysis', taskType: 'permutation_test', description: 'Two-sided permutation test', requirements: ['statistics'], inputs: ['research_data'] });
  await live.until((state) => state.workOrderCounts.completed === 1, { what: 'the analysis to complete' });
  const { pValue, power, observed } = TestResult.parse((await wf.getWorkOrder('analysis')).result);
  console.log(`analysis: treatment − control = ${observed} points, p = ${pValue}, power ≈ ${power}`);
  const recorded = await wf.recordKpi(kpi.id, power);
  await wf.updateObjective(objective.id, { status: pValue < 0.05 ? 'completed' : 'failed', progress: 100 });
  console.log(`objective "${objective.name}" (${objective.target}): ${pValue < 0.05 ? 'completed' : 'failed'}; KPI power ${recorded.current} ${recorded.met ? 'met' : 'not met'} (target ${kpi.target})`);

  // The write-up is made outside the hub from the results: registered as derived from them.
  const draftPath = join(hub.dataRoot, 'paper-draft.md');
  writeFileSync(draftPath, `# EXP001\n\nThe treatment raised scores by ${observed} points (p = ${pValue}).\n`);
  await wf.addDataReference({ id: 'paper_draft', path: draftPath, description: 'Paper draft', derivedFrom: ['results'], tags: ['paper'] });

  console.log('provenance:');
  for await (const ref of wf.dataReferences({ sort: 'path' })) {
    const p = ref.provenance;
    const producer = p.agentId ? `${p.agentId}, work order ${p.workOrderId}, attempt ${p.attempt}` : `${p.registeredBy.role} ${p.registeredBy.name}`;
    console.log(`  ${ref.id.padEnd(14)} ${p.source.padEnd(8)} by ${producer}${p.derivedFrom.length ? `; derived from ${p.derivedFrom.join(', ')}` : ''}`);
  }
  const upstream = await wf.upstream('paper_draft');
  console.log(`lineage of paper_draft: ${upstream.nodes.map((n) => n.id).join(' ← ')}`);
  const downstream = await wf.downstream('research_data');
  console.log(`made from research_data: ${downstream.nodes.filter((n) => n.depth > 0).map((n) => `${n.id} (depth ${n.depth})`).join(', ')}`);
  const event = await wf.openLineageEvent('analysis');
  console.log(`OpenLineage ${event.eventType} event for job ${event.job.name}: inputs [${event.inputs.map((d) => basename(d.name)).join(', ')}] → outputs [${event.outputs.map((d) => basename(d.name)).join(', ')}]`);

  if (hub.validatesData) {
    console.log(`integrity: research_data is ${(await wf.validateDataReference('research_data')).status}`);
    appendFileSync(dataPath, 'P101,treatment,99\n');
    console.log(`integrity after someone appended a row: ${(await wf.validateDataReference('research_data')).status}`);
  }
  await wf.complete();
  console.log(`research study: ${(await wf.summary()).status}`);
} finally {
  await Promise.all([statistician.close(), monitor.close(), control.close()]);
  await hub.close();
}
