import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DataFilter, DataReferenceSpec } from '../../shared/schemas/data.ts';
import { LineageGraphQuery, LineageQuery } from '../../shared/schemas/lineage.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { searchData } from '../../server/domain/data/data-search.ts';
import type { Observation, PreparedSpec } from '../../server/domain/data/inventory.ts';
import { lineageGraph, traverse } from '../../server/domain/data/lineage-graph.ts';
import { datasetName, uuidFrom } from '../../server/domain/data/open-lineage.ts';
import { domain, SETTINGS } from '../helpers/domain.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';

type Domain = ReturnType<typeof domain>;
const HASH_A = 'a'.repeat(64);
const HASH_B = 'b'.repeat(64);

function setup() {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  return { d, workflowId };
}

/** A spec as the transport hands it to the domain, with what it "observed" on disk. */
function spec(fields: z.input<typeof DataReferenceSpec>, observed: Observation | null = null): PreparedSpec {
  return { ...DataReferenceSpec.parse(fields), observed };
}

function register(d: Domain, workflowId: string, ...items: PreparedSpec[]) {
  return d.run('data.register', { workflowId, items }).reply.items;
}

const search = (d: Domain, filter: z.input<typeof DataFilter>) => searchData(d.state, DataFilter.parse(filter));
const ids = (page: { items: Array<{ id: string }> }) => page.items.map((item) => item.id);

describe('data inventory (domain)', () => {
  it('derives status from what the transport observed and what the caller declared', () => {
    const { d, workflowId } = setup();
    const [valid, missing, changed, uri] = register(
      d,
      workflowId,
      spec({ id: 'valid', path: '/data/a.csv' }, { exists: true, size: 10, checksum: HASH_A }),
      spec({ id: 'missing', path: '/data/b.csv' }, { exists: false, size: null, checksum: null }),
      spec({ id: 'changed', path: '/data/c.csv', checksum: HASH_B }, { exists: true, size: 3, checksum: HASH_A }),
      spec({ id: 'uri', path: 's3://bucket/x/model.pkl', size: 99 }),
    );
    expect(valid).toMatchObject({ status: 'valid', size: 10, checksum: HASH_A, dataType: 'csv', location: 'file', validatedAt: 1000 });
    expect(missing).toMatchObject({ status: 'missing', size: null, checksum: null });
    // The declared checksum stays the recorded one: the file on disk is not what the caller said.
    expect(changed).toMatchObject({ status: 'changed', checksum: HASH_B });
    expect(uri).toMatchObject({ status: 'registered', location: 'uri', size: 99, dataType: 'pkl', validatedAt: null });
  });

  it('registers all or none, and refuses an existing id with CONFLICT', () => {
    const { d, workflowId } = setup();
    register(d, workflowId, spec({ id: 'raw', path: '/data/raw.csv' }));
    const version = d.state.versions.get(workflowId);
    expect(codeOf(() => register(d, workflowId, spec({ id: 'fresh', path: '/a' }), spec({ id: 'raw', path: '/b' })))).toBe('CONFLICT');
    expect(codeOf(() => register(d, workflowId, spec({ id: 'fresh', path: '/a', derivedFrom: ['nope'] })))).toBe('NOT_FOUND');
    expect(Object.keys(d.state.workflows.get(workflowId)!.data)).toEqual(['raw']);
    expect(d.state.versions.get(workflowId)).toBe(version);
  });

  it('keeps a bounded history of versions on update', () => {
    const { d, workflowId } = setup();
    register(d, workflowId, spec({ id: 'model', path: '/m/v1.pkl' }, { exists: true, size: 1, checksum: HASH_A }));
    for (let v = 2; v <= 6; v++) {
      d.advance(1);
      d.run('data.update', { workflowId, dataId: 'model', path: `/m/v${v}.pkl`, requireExists: false, observed: { exists: true, size: v, checksum: HASH_B } });
    }
    const model = d.state.workflows.get(workflowId)!.data.model!;
    expect(model).toMatchObject({ version: 6, path: '/m/v6.pkl', size: 6 });
    // The test settings keep 3 previous versions.
    expect(model.history.map((h) => [h.version, h.path])).toEqual([
      [3, '/m/v3.pkl'],
      [4, '/m/v4.pkl'],
      [5, '/m/v5.pkl'],
    ]);
    const stale = { workflowId, dataId: 'model', requireExists: false, expectedVersion: 2, observed: null };
    expect(codeOf(() => d.run('data.update', stale))).toBe('CONFLICT');

    // A hub started again with a smaller limit trims the history at the next version, not one entry at a time.
    const limit = SETTINGS.dataHistoryLimit;
    (SETTINGS as { dataHistoryLimit: number }).dataHistoryLimit = 1;
    try {
      d.run('data.update', { workflowId, dataId: 'model', path: '/m/v7.pkl', requireExists: false, observed: { exists: true, size: 7, checksum: HASH_B } });
    } finally {
      (SETTINGS as { dataHistoryLimit: number }).dataHistoryLimit = limit;
    }
    expect(d.state.workflows.get(workflowId)!.data.model!.history.map((h) => h.version)).toEqual([6]);
  });

  it('refuses an update whose file was read at a path another update has moved the reference from meanwhile', () => {
    const { d, workflowId } = setup();
    register(d, workflowId, spec({ id: 'ref', path: '/data/big.bin' }, { exists: true, size: 1, checksum: HASH_A }));
    // Another update moves the reference while the hub reads /data/big.bin for this one.
    d.run('data.update', { workflowId, dataId: 'ref', path: 's3://lake/elsewhere.parquet', requireExists: false, observed: null });
    const version = d.state.versions.get(workflowId);
    const late = { workflowId, dataId: 'ref', description: 're-measured', requireExists: false, observed: { exists: true, size: 64, checksum: HASH_B }, observedPath: '/data/big.bin' };
    expect(codeOf(() => d.run('data.update', late))).toBe('CONFLICT');
    expect(d.state.workflows.get(workflowId)!.data.ref).toMatchObject({ path: 's3://lake/elsewhere.parquet', status: 'registered', size: null, checksum: null, version: 2 });
    expect(d.state.versions.get(workflowId)).toBe(version);
    // Read where it still is, the same update goes through.
    d.run('data.update', { ...late, observedPath: 's3://lake/elsewhere.parquet', observed: null });
    expect(d.state.workflows.get(workflowId)!.data.ref).toMatchObject({ description: 're-measured', version: 3 });
  });

  it('validates against the recorded checksum: valid, changed, missing', () => {
    const { d, workflowId } = setup();
    register(d, workflowId, spec({ id: 'f', path: '/f.csv' }, { exists: true, size: 1, checksum: HASH_A }));
    const check = (observed: Observation) => d.run('data.validate', { workflowId, dataId: 'f', version: 1, observed }).reply.item.status;
    expect(check({ exists: true, size: 1, checksum: HASH_A })).toBe('valid');
    expect(check({ exists: true, size: 2, checksum: HASH_B })).toBe('changed');
    expect(check({ exists: false, size: null, checksum: null })).toBe('missing');
    expect(d.state.workflows.get(workflowId)!.data.f!.checksum).toBe(HASH_A);
    expect(codeOf(() => d.run('data.validate', { workflowId, dataId: 'f', version: 7, observed: { exists: false, size: null, checksum: null } }))).toBe('CONFLICT');
  });

  it('filters by each field, sorts, and pages with a cursor that survives new data', () => {
    const { d, workflowId } = setup();
    register(
      d,
      workflowId,
      spec({ id: 'a', path: '/d/Sales.csv', tags: ['raw', 'eu'], description: 'monthly sales' }, { exists: true, size: 30, checksum: HASH_A }),
      spec({ id: 'b', path: '/d/users.parquet', tags: ['raw'] }, { exists: false, size: null, checksum: null }),
    );
    d.advance(10);
    register(d, workflowId, spec({ id: 'c', path: '/d/clean.csv', tags: ['eu', 'clean'], derivedFrom: ['a'] }, { exists: true, size: 10, checksum: HASH_B }));
    expect(ids(search(d, { workflowId, dataType: 'csv' }))).toEqual(['a', 'c']);
    expect(ids(search(d, { workflowId, tags: ['raw', 'eu'] }))).toEqual(['a']);
    expect(ids(search(d, { workflowId, text: 'SALES' }))).toEqual(['a']);
    expect(ids(search(d, { workflowId, text: 'monthly' }))).toEqual(['a']);
    expect(ids(search(d, { workflowId, status: 'missing' }))).toEqual(['b']);
    expect(ids(search(d, { workflowId, source: 'derived' }))).toEqual(['c']);
    expect(ids(search(d, { workflowId, createdAfter: 1010 }))).toEqual(['c']);
    expect(ids(search(d, { workflowId, createdBefore: 1010 }))).toEqual(['a', 'b']);
    // Paths sort by code unit, so 'S' comes before 'c'.
    expect(ids(search(d, { workflowId, sort: 'path', order: 'desc' }))).toEqual(['b', 'c', 'a']);
    expect(ids(search(d, { workflowId, sort: 'size' }))).toEqual(['b', 'c', 'a']);

    const first = search(d, { workflowId, limit: 2 });
    expect([ids(first), first.total]).toEqual([['a', 'b'], 3]);
    d.advance(5);
    register(d, workflowId, spec({ id: '0-early-id', path: '/d/z.csv' }));
    const second = search(d, { workflowId, limit: 2, cursor: first.nextCursor! });
    expect(ids(second)).toEqual(['c', '0-early-id']);
    expect(second.nextCursor).toBeNull();
    expect(codeOf(() => search(d, { workflowId, cursor: 'garbage' }))).toBe('VALIDATION');
  });

  it('records a run with inputs and outputs when a work order completes, with provenance from the attempt', () => {
    const { d, workflowId } = setup();
    d.run('workflow.start', { workflowId });
    register(d, workflowId, spec({ id: 'raw', path: '/raw.csv' }));
    d.register('cleaner');
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'clean', taskType: 'clean', inputs: ['raw'] }));
    const attempt = d.state.workflows.get(workflowId)!.workOrders.clean!.attempt!;
    const agent = { role: 'agent' as const, name: 'cleaner', agentId: 'cleaner' };
    d.run('offer.answer', { workflowId, workOrderId: 'clean', attemptToken: attempt.token, accept: true }, agent);
    d.advance(50);
    const outputs = [spec({ id: 'clean-data', path: '/clean.csv' })];
    d.run('task.complete', { workflowId, workOrderId: 'clean', attemptToken: attempt.token, outputs }, agent);
    const workflow = d.state.workflows.get(workflowId)!;
    expect(workflow.data['clean-data']!.provenance).toMatchObject({ agentId: 'cleaner', workOrderId: 'clean', attempt: 1, source: 'produced' });
    expect(Object.values(workflow.lineage)).toEqual([
      expect.objectContaining({ operation: 'clean', inputs: ['raw'], outputs: ['clean-data'], workOrderId: 'clean', agentId: 'cleaner', attempt: 1, status: 'completed', startedAt: 1000, endedAt: 1050 }),
    ]);
  });

  it('walks lineage breadth-first with the shortest depth, stops at maxDepth and survives cycles', () => {
    const { d, workflowId } = setup();
    register(d, workflowId, ...['a', 'b', 'c', 'd'].map((id) => spec({ id, path: `/${id}` })));
    const link = (inputs: string[], outputs: string[]) =>
      d.run('lineage.link', { workflowId, operation: 'op', description: '', inputs, outputs }, { role: 'admin', name: 't' });
    link(['a'], ['b']);
    link(['b'], ['c']);
    link(['a'], ['c']);
    link(['c'], ['d']);
    link(['d'], ['a']);
    const down = traverse(d.state, LineageQuery.parse({ workflowId, dataId: 'a' }), 'downstream');
    expect(down.nodes.map((n) => [n.id, n.depth])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 1],
      ['d', 2],
    ]);
    expect(down.edges.map((e) => `${e.from}>${e.to}`).sort()).toEqual(['a>b', 'a>c', 'b>c', 'c>d', 'd>a']);
    const shallow = traverse(d.state, LineageQuery.parse({ workflowId, dataId: 'd', maxDepth: 1 }), 'upstream');
    expect([shallow.nodes.map((n) => n.id), shallow.truncated]).toEqual([['d', 'c'], true]);
    expect(lineageGraph(d.state, LineageGraphQuery.parse({ workflowId })).edges).toHaveLength(5);
    expect(codeOf(() => link(['a'], ['ghost']))).toBe('NOT_FOUND');
    expect(Object.keys(d.state.workflows.get(workflowId)!.lineage)).toHaveLength(5);
  });

  it('names OpenLineage datasets and derives stable UUID run ids', () => {
    expect(datasetName({ path: 's3://bucket/x/y.parquet', location: 'uri' })).toEqual({ namespace: 's3://bucket', name: 'x/y.parquet' });
    expect(datasetName({ path: '/data/a.csv', location: 'file' })).toEqual({ namespace: 'file', name: '/data/a.csv' });
    expect(uuidFrom('run-1')).toBe(uuidFrom('run-1'));
    expect(uuidFrom('run-1')).not.toBe(uuidFrom('run-2'));
    expect(z.uuid().safeParse(uuidFrom('run-1')).success).toBe(true);
  });
});
