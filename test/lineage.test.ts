import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { NonRetryableError } from '../client-sdk/index.ts';
import { agent, control, startHub, tempDir } from './helpers/hub.ts';
import { untilOrder } from './helpers/wait.ts';
import { codeOf } from './helpers/errors.ts';

/** The required structure of an OpenLineage 2-0-2 RunEvent (BaseEvent + RunEvent + BaseFacet), written from the spec. */
const Facet = z.looseObject({ _producer: z.url(), _schemaURL: z.url() });
const Dataset = z.looseObject({ namespace: z.string().min(1), name: z.string().min(1), facets: z.record(z.string(), Facet).optional() });
const RunEventSpec = z.looseObject({
  eventTime: z.iso.datetime(),
  producer: z.url(),
  schemaURL: z.literal('https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent'),
  eventType: z.enum(['START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', 'OTHER']).optional(),
  run: z.looseObject({ runId: z.uuid(), facets: z.record(z.string(), Facet).optional() }),
  job: z.looseObject({ namespace: z.string().min(1), name: z.string().min(1), facets: z.record(z.string(), Facet).optional() }),
  inputs: z.array(Dataset).optional(),
  outputs: z.array(Dataset).optional(),
});

/**
 * raw → clean → features → model: raw registered by a control client, each later step a work
 * order that reads the previous output (declared before it exists) and returns its own.
 */
async function pipeline() {
  const root = tempDir('switchboard-lineage-');
  const hub = await startHub({ dataRoots: [root] });
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'train a model' });
  writeFileSync(join(root, 'raw.csv'), 'raw rows');
  await wf.addDataReference({ id: 'raw', path: join(root, 'raw.csv') });
  const steps = [
    { taskType: 'clean', input: 'raw', output: 'clean' },
    { taskType: 'features', input: 'clean', output: 'features' },
    { taskType: 'train', input: 'features', output: 'model' },
  ];
  const worker = await agent(hub, { agentId: 'ml-agent', agentType: 'ml', maxConcurrentTasks: 3 });
  for (const step of steps) {
    await worker.onTask(step.taskType, (task) => {
      const path = join(root, `${step.output}.out`);
      writeFileSync(path, `${step.output} made from ${task.inputs.map((i) => i.id).join(',')}`);
      return { result: 'ok', outputs: [{ id: step.output, path }] };
    });
  }
  await wf.createWorkOrders(
    steps.map((step, i) => ({ id: step.taskType, taskType: step.taskType, inputs: [step.input], dependencies: i === 0 ? [] : [steps[i - 1]!.taskType] })),
  );
  await wf.start();
  await untilOrder(hub, wf.id, 'train', 'completed');
  return { hub, client, wf, root, worker };
}

const chain = (nodes: Array<{ id: string; depth: number }>) => nodes.map((n) => `${n.id}@${n.depth}`);

describe('lineage', () => {
  it('records a raw → clean → features → model chain from work orders and answers upstream and downstream to any depth', async () => {
    const { wf } = await pipeline();
    const up = await wf.upstream('model');
    expect(chain(up.nodes)).toEqual(['model@0', 'features@1', 'clean@2', 'raw@3']);
    expect(up.edges.map((e) => [e.from, e.to, e.operation, e.workOrderId])).toEqual([
      ['features', 'model', 'train', 'train'],
      ['clean', 'features', 'features', 'features'],
      ['raw', 'clean', 'clean', 'clean'],
    ]);
    expect(up.truncated).toBe(false);
    const down = await wf.downstream('raw');
    expect(chain(down.nodes)).toEqual(['raw@0', 'clean@1', 'features@2', 'model@3']);

    const near = await wf.upstream('model', 1);
    expect([chain(near.nodes), near.edges.length, near.truncated]).toEqual([['model@0', 'features@1'], 1, true]);
    const two = await wf.downstream('raw', 2);
    expect([chain(two.nodes), two.truncated]).toEqual([['raw@0', 'clean@1', 'features@2'], true]);

    const graph = await wf.lineageGraph();
    expect(graph.nodes.map((n) => n.id).sort()).toEqual(['clean', 'features', 'model', 'raw']);
    expect(graph.transformations).toHaveLength(3);
    for (const run of graph.transformations) expect(run).toMatchObject({ agentId: 'ml-agent', attempt: 1, status: 'completed', recordedBy: 'hub' });
    expect(await wf.getDataReference('features')).toMatchObject({ provenance: { agentId: 'ml-agent', workOrderId: 'features', attempt: 1, source: 'produced' } });
  });

  it('refuses a link with an unknown reference with NOT_FOUND and leaves the lineage unchanged', async () => {
    const { hub, wf } = await pipeline();
    const before = await wf.lineageGraph();
    expect(await codeOf(wf.linkLineage({ operation: 'merge', inputs: ['raw', 'ghost'], outputs: ['model'] }))).toBe('NOT_FOUND');
    expect(await codeOf(wf.linkLineage({ operation: 'merge', inputs: ['raw'], outputs: ['model'], workOrderId: 'no-such-order' }))).toBe('NOT_FOUND');
    expect(await wf.lineageGraph()).toEqual(before);
    expect((await wf.summary()).version).toBe(before.version);
    // A work order that reads an unknown reference is refused too, unless something upstream may produce it.
    expect(await codeOf(wf.createWorkOrder({ taskType: 'clean', inputs: ['ghost'] }))).toBe('NOT_FOUND');
    await wf.createWorkOrder({ id: 'after-train', taskType: 'features', inputs: ['never-made'], dependencies: ['train'] });
    const order = await untilOrder(hub, wf.id, 'after-train', 'failed');
    expect(order.error).toBe('input data reference never-made does not exist');
  });

  it('exports finished work orders as valid OpenLineage RunEvents: COMPLETE with datasets, FAIL with the error', async () => {
    const { hub, wf, worker, root } = await pipeline();
    const event = await wf.openLineageEvent('features');
    expect(RunEventSpec.safeParse(event).error?.issues ?? []).toEqual([]);
    expect(event).toMatchObject({
      eventType: 'COMPLETE',
      job: { namespace: 'switchboard', name: `${wf.id}.features` },
      inputs: [{ namespace: 'file', name: join(root, 'clean.out') }],
      outputs: [{ namespace: 'file', name: join(root, 'features.out') }],
    });
    expect((await wf.openLineageEvent('features')).run.runId).toBe(event.run.runId);
    expect((await wf.openLineageEvent('clean')).run.runId).not.toBe(event.run.runId);

    await worker.onTask('score', () => {
      throw new NonRetryableError('model file is corrupt');
    });
    await wf.createWorkOrder({ id: 'score', taskType: 'score', inputs: ['model'] });
    await untilOrder(hub, wf.id, 'score', 'failed');
    const failed = await wf.openLineageEvent('score');
    expect(RunEventSpec.safeParse(failed).error?.issues ?? []).toEqual([]);
    expect(failed).toMatchObject({ eventType: 'FAIL', inputs: [{ name: join(root, 'model.out') }], outputs: [] });
    expect(failed.run.facets.errorMessage).toMatchObject({ message: expect.stringContaining('model file is corrupt') });
    expect((await wf.lineageGraph()).transformations.find((t) => t.workOrderId === 'score')).toMatchObject({ status: 'failed', inputs: ['model'] });

    await worker.onTask('slow', () => new Promise(() => undefined));
    await wf.createWorkOrder({ id: 'slow', taskType: 'slow' });
    expect(await codeOf(wf.openLineageEvent('slow'))).toBe('INVALID_TRANSITION');
  });

  it('exports a finished order with the versions of its data it read and produced, also once that data has new versions', async () => {
    const root = tempDir('switchboard-lineage-');
    let now = Date.UTC(2026, 11, 1, 9);
    const hub = await startHub({ dataRoots: [root] }, { clock: () => now });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'versions' });
    const write = (name: string, content: string) => (writeFileSync(join(root, name), content), join(root, name));
    await wf.addDataReference({ id: 'raw', path: write('raw.csv', 'raw v1') });
    const worker = await agent(hub, { agentId: 'cleaner', agentType: 'clean' });
    await worker.onTask('clean', () => ({ outputs: [{ id: 'clean', path: write('clean.csv', 'clean v1') }] }));
    await wf.createWorkOrder({ id: 'clean', taskType: 'clean', inputs: ['raw'] });
    await wf.start();
    await untilOrder(hub, wf.id, 'clean', 'completed');
    const exported = await wf.openLineageEvent('clean');
    const versionOf = (dataset: (typeof exported.inputs)[number]) => dataset.facets.version?.datasetVersion;
    expect([...exported.inputs, ...exported.outputs].map(versionOf)).toEqual([
      (await wf.getDataReference('raw')).checksum,
      (await wf.getDataReference('clean')).checksum,
    ]);
    // New content and new versions after the run: the run still read and made the first ones.
    now += 1000;
    write('raw.csv', 'raw v2');
    write('clean.csv', 'clean v2');
    await wf.updateDataReference('raw', {});
    await wf.updateDataReference('clean', {});
    expect(await wf.openLineageEvent('clean')).toEqual(exported);
  });

  it('links an output derived from another output of the same attempt to it, never showing that one as made from itself', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'one order, two outputs', config: { enableDataValidation: false } });
    await wf.addDataReference({ id: 'raw', path: 's3://lake/raw.csv' });
    const worker = await agent(hub, { agentId: 'prep', agentType: 'prep' });
    await worker.onTask('prep', () => ({
      outputs: [
        { id: 'clean', path: 's3://lake/clean.csv' },
        { id: 'features', path: 's3://lake/features.parquet', derivedFrom: ['clean'] },
      ],
    }));
    await wf.createWorkOrder({ id: 'prep', taskType: 'prep', inputs: ['raw'] });
    await wf.start();
    await untilOrder(hub, wf.id, 'prep', 'completed');
    const edges = (await wf.lineageGraph()).edges.map((edge) => `${edge.from}→${edge.to} ${edge.operation} ${edge.workOrderId}`);
    expect(edges).toEqual(['raw→clean prep prep', 'raw→features prep prep', 'clean→features derive prep']);
    expect(chain((await wf.upstream('clean')).nodes)).toEqual(['clean@0', 'raw@1']);
    expect((await wf.upstream('clean')).edges.map((edge) => edge.from)).toEqual(['raw']);
    expect(chain((await wf.upstream('features')).nodes)).toEqual(['features@0', 'raw@1', 'clean@1']);
    const event = await wf.openLineageEvent('prep');
    expect([event.inputs.map((d) => d.name), event.outputs.map((d) => d.name)]).toEqual([['raw.csv'], ['clean.csv', 'features.parquet']]);
  });

  it('refuses references derived from themselves, directly or around a loop within one request, with CONFLICT, registering none of them', async () => {
    const wf = await (await control(await startHub())).createWorkflow({ userQuery: 'loops', config: { enableDataValidation: false } });
    await wf.addDataReference({ id: 'raw', path: 's3://lake/raw' });
    const before = await wf.get();
    const ref = (id: string, derivedFrom: string[]) => ({ id, path: `s3://lake/${id}`, derivedFrom });
    expect(await codeOf(wf.addDataReference(ref('self', ['raw', 'self'])))).toBe('CONFLICT');
    expect(await codeOf(wf.addDataReferences([ref('a', ['raw', 'b']), ref('b', ['a'])]))).toBe('CONFLICT');
    expect(await codeOf(wf.addDataReferences([ref('x', ['z']), ref('y', ['x']), ref('z', ['y', 'raw'])]))).toBe('CONFLICT');
    expect(await wf.get()).toEqual(before);
    // A request may still derive from references that come later in it, when they do not loop back.
    await wf.addDataReferences([ref('late', ['early', 'raw']), ref('early', ['raw'])]);
    expect((await wf.upstream('late')).nodes.map((n) => `${n.id}@${n.depth}`)).toEqual(['late@0', 'early@1', 'raw@1']);
  });

  it('links the output a retry registers again to the data that retry says it was derived from', async () => {
    const hub = await startHub({ backoffBaseMs: 0 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'retry', config: { enableDataValidation: false } });
    await wf.addDataReferences([{ id: 'old-source', path: 's3://lake/old' }, { id: 'new-source', path: 's3://lake/new' }]);
    const worker = await agent(hub, { agentId: 'worker', agentType: 'w', logger: null });
    await worker.onTask('make', async (task, ctx) => {
      if (task.attempt === 1) {
        await ctx.addDataReference({ id: 'out', path: 's3://lake/out-1', derivedFrom: ['old-source'] });
        throw new Error('flaky');
      }
      return { outputs: [{ id: 'out', path: 's3://lake/out-2', derivedFrom: ['new-source'] }] };
    });
    await wf.start();
    await wf.createWorkOrder({ id: 'make', taskType: 'make', maxAttempts: 2 });
    await untilOrder(hub, wf.id, 'make', 'completed');
    expect(await wf.getDataReference('out')).toMatchObject({ path: 's3://lake/out-2', version: 2, provenance: { attempt: 2, derivedFrom: ['new-source'] } });
    const up = await wf.upstream('out');
    expect(up.edges.map((e) => [e.from, e.to, e.workOrderId])).toEqual([['new-source', 'out', 'make']]);
  });

  it('refuses a retry that registers its output again from data made from that output, around a loop: the attempt fails and the output is as it was', async () => {
    const hub = await startHub({ backoffBaseMs: 0 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'retry around a loop', config: { enableDataValidation: false } });
    const worker = await agent(hub, { agentId: 'worker', agentType: 'w', logger: null });
    await worker.onTask('make', async (task, ctx) => {
      if (task.attempt === 1) {
        await ctx.addDataReference({ id: 'out', path: 's3://lake/out-1' });
        await wf.addDataReferences([{ id: 'summary', path: 's3://lake/summary', derivedFrom: ['out'] }]);
        throw new Error('flaky');
      }
      return { outputs: [{ id: 'out', path: 's3://lake/out-2', derivedFrom: ['summary'] }] };
    });
    await wf.start();
    await wf.createWorkOrder({ id: 'make', taskType: 'make', maxAttempts: 2 });
    const order = await untilOrder(hub, wf.id, 'make', 'failed');
    expect(order.error).toContain('around a loop: out ← summary ← out');
    expect(await wf.getDataReference('out')).toMatchObject({ path: 's3://lake/out-1', version: 1, provenance: { attempt: 1, derivedFrom: [] } });
  });

  it('reads a big lineage in bounded replies: the graph a page at a time, each entry once; a walk up to its limit, nearest first', async () => {
    const wf = await (await control(await startHub())).createWorkflow({ userQuery: 'a long chain' });
    const ids = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    await wf.addDataReferences(ids.map((id, i) => ({ id, path: `s3://lake/${id}`, derivedFrom: i === 0 ? [] : [ids[i - 1]!] })));
    const whole = await wf.lineageGraph();
    expect([whole.nodes.length, whole.transformations.length, whole.edges.length, whole.nextCursor]).toEqual([60, 59, 59, null]);
    const gathered = { nodes: [] as string[], transformations: [] as string[], edges: [] as string[] };
    let pages = 0;
    for (let cursor: string | null | undefined; cursor !== null; pages++) {
      const page = await wf.lineageGraphPage(cursor === undefined ? { limit: 25 } : { limit: 25, cursor });
      expect(page.nodes.length + page.transformations.length + page.edges.length).toBeLessThanOrEqual(25);
      gathered.nodes.push(...page.nodes.map((node) => node.id));
      gathered.transformations.push(...page.transformations.map((run) => run.id));
      gathered.edges.push(...page.edges.map((e) => `${e.from}>${e.to}`));
      cursor = page.nextCursor;
    }
    expect(pages).toBe(8);
    expect(gathered).toEqual({
      nodes: whole.nodes.map((node) => node.id),
      transformations: whole.transformations.map((run) => run.id),
      edges: whole.edges.map((e) => `${e.from}>${e.to}`),
    });
    expect(gathered.nodes).toEqual(ids);
    expect(await codeOf(wf.lineageGraphPage({ cursor: 'not-a-cursor' }))).toBe('VALIDATION');

    const near = await wf.upstream('s59', { limit: 10 });
    expect([chain(near.nodes).slice(0, 3), near.nodes.length, near.edges.length, near.truncated]).toEqual([['s59@0', 's58@1', 's57@2'], 10, 9, true]);
    const all = await wf.upstream('s59');
    expect([all.nodes.length, all.truncated]).toEqual([60, false]);
    expect(await codeOf(wf.downstream('s00', { limit: 5000 }))).toBe('VALIDATION');
  });

  it('keeps data and lineage across a hub restart', async () => {
    const dataDir = tempDir();
    const root = tempDir('switchboard-lineage-');
    const first = await startHub({ dataDir, dataRoots: [root] });
    const wf = await (await control(first)).createWorkflow({ id: 'durable', userQuery: 'restart' });
    await wf.addDataReferences([{ id: 'a', path: 's3://b/a' }, { id: 'b', path: 's3://b/b', derivedFrom: ['a'] }]);
    await first.close();
    const second = await startHub({ dataDir, dataRoots: [root] });
    const again = (await control(second)).workflow('durable');
    expect(chain((await again.upstream('b')).nodes)).toEqual(['b@0', 'a@1']);
  });

  it('lists transformations in the same order before and after a restart, ids like "9" among them, so a graph cursor goes on where it was', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const wf = await (await control(first)).createWorkflow({ userQuery: 'numeric run ids', config: { enableDataValidation: false } });
    await wf.addDataReferences([{ id: 'a', path: 's3://lake/a' }, { id: 'b', path: 's3://lake/b', derivedFrom: ['a'] }]);
    await wf.linkLineage({ id: '9', operation: 'nine', inputs: ['a'], outputs: ['b'] });
    await wf.linkLineage({ id: 'named', operation: 'named', inputs: ['a'], outputs: ['b'] });
    await wf.linkLineage({ id: '1', operation: 'one', inputs: ['a'], outputs: ['b'] });
    const whole = await wf.lineageGraph();
    const edges = (await wf.upstream('b')).edges.map((e) => e.transformationId);
    // Two nodes, then a run and its edge: the cursor points into the runs.
    const page = await wf.lineageGraphPage({ limit: 4 });
    await first.close();

    const again = (await control(await startHub({ dataDir }))).workflow(wf.id);
    expect(await again.lineageGraph()).toEqual(whole);
    expect((await again.upstream('b')).edges.map((e) => e.transformationId)).toEqual(edges);
    const rest = await again.lineageGraphPage({ limit: 2000, cursor: page.nextCursor! });
    expect([...page.transformations, ...rest.transformations].map((run) => run.id)).toEqual(whole.transformations.map((run) => run.id));
  });
});
