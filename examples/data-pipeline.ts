// A multi-agent data-processing pipeline: loading → cleaning → analysis, one agent per stage. Each
// stage reads the previous stage's file and registers its own output, so the hub records who made
// what from what (provenance and lineage). The Python package's "Multi-Agent Data Processing".
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAgent, connectControl, connectMonitor } from 'switchboard/client';
import { useHub } from './support/hub.ts';

const hub = await useHub();
const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
const monitor = await connectMonitor({ url: hub.url, token: hub.tokens.monitor });
const connect = (agentId: string, agentType: string, capabilities: string[]) =>
  connectAgent({ url: hub.url, token: hub.tokens.agent, agentId, agentType, capabilities });
const agents = await Promise.all([
  connect('data_loader', 'loading', ['csv', 'json']),
  connect('data_cleaner', 'cleaning', ['validation', 'transformation']),
  connect('analyzer', 'analysis', ['statistics', 'ml']),
]);
const [loader, cleaner, analyzer] = agents;
const file = (name: string) => join(hub.dataRoot, name);
const rowsOf = (path: string) => readFileSync(path, 'utf8').trim().split('\n').slice(1).map((line) => line.split(','));

try {
  await loader.onTask('loading', () => {
    const regions = ['emea', 'amer', 'apac'];
    const rows = Array.from({ length: 30 }, (_, i) => `${i + 1},${regions[i % 3]},${i % 7 === 0 ? '' : (i * 37) % 500}`);
    writeFileSync(file('raw.csv'), ['id,region,amount', ...rows].join('\n') + '\n');
    return { result: { rows: rows.length }, outputs: [{ id: 'raw', path: file('raw.csv'), description: 'Sales as exported', tags: ['raw'] }] };
  });
  await cleaner.onTask('cleaning', (task) => {
    const rows = rowsOf(task.inputs[0]!.path);
    const kept = rows.filter(([, , amount]) => amount !== '');
    writeFileSync(file('clean.csv'), ['id,region,amount', ...kept.map((row) => row.join(','))].join('\n') + '\n');
    const dropped = rows.length - kept.length;
    return { result: { kept: kept.length, dropped }, outputs: [{ id: 'clean', path: file('clean.csv'), tags: ['clean'], metadata: { dropped } }] };
  });
  await analyzer.onTask('analysis', async (task, ctx) => {
    const totals: Record<string, { sum: number; n: number }> = {};
    for (const [, region, amount] of rowsOf(task.inputs[0]!.path)) {
      const total = (totals[region!] ??= { sum: 0, n: 0 });
      total.sum += Number(amount);
      total.n++;
    }
    await ctx.progress(80, 'writing summary');
    const means = Object.fromEntries(Object.entries(totals).map(([region, t]) => [region, Math.round(t.sum / t.n)]));
    writeFileSync(file('summary.json'), JSON.stringify(means, null, 2));
    return { result: means, outputs: [{ id: 'summary', path: file('summary.json'), dataType: 'json', tags: ['report'] }] };
  });
  console.log('agents: data_loader (csv, json), data_cleaner (validation, transformation), analyzer (statistics, ml)');

  const wf = await control.createWorkflow({ userQuery: 'Mean sale per region', config: { enableDataValidation: hub.validatesData } });
  const live = await monitor.subscribe(wf.id);
  // Inputs that do not exist yet are fine for orders with dependencies: they are checked once those are done.
  await wf.createWorkOrders([
    { id: 'loading', taskType: 'loading', description: 'Execute loading stage', requirements: ['csv'] },
    { id: 'cleaning', taskType: 'cleaning', description: 'Execute cleaning stage', requirements: ['validation'], dependencies: ['loading'], inputs: ['raw'] },
    { id: 'analysis', taskType: 'analysis', description: 'Execute analysis stage', requirements: ['statistics'], dependencies: ['cleaning'], inputs: ['clean'] },
  ]);
  await wf.start();
  // Until every stage ended, failed ones too: a stage the hub failed (an output outside its data roots, say) says why.
  const ended = await live.until(
    ({ workOrderCounts: counts }) => (counts.completed ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0) === 3,
    { what: 'the three stages to end' },
  );
  const unfinished = Object.values(ended.workOrders).filter((order) => order.state !== 'completed');
  if (unfinished.length > 0) {
    for (const order of unfinished) console.error(`${order.id}: ${order.state}: ${order.error ?? 'no reason given'}`);
    throw new Error(`data pipeline: ${unfinished.map((order) => order.id).join(', ')} did not complete (see above)`);
  }
  for (const id of ['loading', 'cleaning', 'analysis']) {
    const order = await wf.getWorkOrder(id);
    console.log(`${id}: ${order.state} by ${order.history.at(-1)?.agentId}; result ${JSON.stringify(order.result)}; outputs [${order.outputs.join(', ')}]`);
  }

  const summary = await wf.getDataReference('summary');
  const { agentId, workOrderId, attempt, source } = summary.provenance;
  console.log(`summary.json: ${summary.status}, ${summary.size ?? '?'} bytes; provenance: ${source} by ${agentId} in ${workOrderId} (attempt ${attempt})`);
  const upstream = await wf.upstream('summary');
  console.log(`lineage of summary: ${upstream.nodes.map((n) => `${n.id}@${n.depth}`).join(' ← ')} via ${upstream.edges.map((e) => e.operation).join(', ')}`);
  const cleanOnes: string[] = [];
  for await (const ref of wf.dataReferences({ tags: ['clean'] })) cleanOnes.push(`${ref.id} (dropped ${String(ref.metadata.dropped)})`);
  console.log(`search tag=clean: ${cleanOnes.join(', ')}`);
  await wf.complete();
  console.log(`data pipeline: ${(await wf.summary()).status}`);
} finally {
  await Promise.all([...agents.map((agent) => agent.close()), monitor.close(), control.close()]);
  await hub.close();
}
