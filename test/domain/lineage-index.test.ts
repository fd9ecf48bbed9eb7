import { describe, expect, it } from 'vitest';
import { DataReferenceSpec } from '../../shared/schemas/data.ts';
import { LineageGraphQuery, LineageQuery, LinkLineageInput } from '../../shared/schemas/lineage.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { lineageGraph, traverse } from '../../server/domain/data/lineage-graph.ts';
import { LineageIndex } from '../../server/domain/data/lineage-index.ts';
import { applyCommand } from '../../server/domain/machinery/commands.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { FOLLOWED_PER_WALK } from '../../server/domain/machinery/read-bounds.ts';
import { stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { ADMIN, SETTINGS, domain } from '../helpers/domain.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';

type Domain = ReturnType<typeof domain>;

/** A workflow holding references with these ids. */
function setup(ids: string[]) {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  for (let start = 0; start < ids.length; start += 1000) {
    const items = ids.slice(start, start + 1000).map((id) => ({ ...DataReferenceSpec.parse({ id, path: `s3://lake/${id}` }), observed: null }));
    d.run('data.register', { workflowId, items });
  }
  const link = (inputs: string[], outputs: string[], id?: string) => d.run('lineage.link', LinkLineageInput.parse({ workflowId, operation: 'op', inputs, outputs, ...(id ? { id } : {}) }), ADMIN).reply.item;
  return { d, workflowId, link };
}

/** Everything the index answers: runs in order, and each reference's runs both ways. */
function view(index: LineageIndex, dataIds: string[]) {
  const runs = Array.from({ length: index.size }, (_, place) => index.runAt(place)!.id);
  const by = (direction: 'upstream' | 'downstream') => Object.fromEntries(dataIds.map((id) => [id, index.runsOf(id, direction).map((run) => run.id)]));
  return { runs, places: runs.map((id) => index.placeOf(id)), upstream: by('upstream'), downstream: by('downstream') };
}

function kept(d: Domain, workflowId: string) {
  const workflow = d.state.workflows.get(workflowId)!;
  const ids = Object.keys(workflow.data);
  return { kept: view(d.state.inventory.lineage(workflow), ids), rebuilt: view(new LineageIndex(Object.values(workflow.lineage)), ids) };
}

/** Every page of the graph, as what each holds. */
function graphPages(d: Domain, workflowId: string, limit: number) {
  const pages = [];
  let cursor: string | undefined;
  do {
    const page = lineageGraph(d.state, LineageGraphQuery.parse({ workflowId, limit, ...(cursor ? { cursor } : {}) }));
    pages.push({
      nodes: page.nodes.map((node) => node.id),
      transformations: page.transformations.map((run) => run.id),
      edges: page.edges.map((e) => `${e.from}>${e.to}`),
    });
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return pages;
}

describe('the lineage index (domain)', () => {
  it('kept up to date as runs are recorded, equals one built from the documents, and at start-up too', () => {
    const { d, workflowId, link } = setup(['a', 'b', 'c', 'd']);
    const index = d.state.inventory.lineage(d.state.workflows.get(workflowId)!);
    link(['a'], ['b', 'c'], 'r1');
    link(['b', 'c'], ['d'], 'r2');
    link(['a', 'd'], ['c'], 'r3');
    // derivedFrom records a `derive` run too.
    d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: 'e', path: 's3://lake/e', derivedFrom: ['d'] }), observed: null }] });
    const { kept: seen, rebuilt } = kept(d, workflowId);
    expect(seen).toEqual(rebuilt);
    expect(seen.upstream.c).toEqual(['r1', 'r3']);
    expect(seen.downstream.a).toEqual(['r1', 'r3']);
    expect(seen.runs).toHaveLength(4);
    expect(d.state.inventory.lineage(d.state.workflows.get(workflowId)!)).toBe(index);
    const restarted = stateFromDocs(new Map(storedDocs(d.state)), 9_000);
    const workflow = restarted.workflows.get(workflowId)!;
    expect(view(restarted.inventory.lineage(workflow), Object.keys(workflow.data))).toEqual(seen);
  });

  it('forgets the runs of a rolled-back batch, as the hub undoes a batch whose journal write failed', () => {
    const { d, workflowId, link } = setup(['a', 'b', 'c']);
    link(['a'], ['b'], 'kept');
    const before = kept(d, workflowId).kept;
    const batch = ['gone1', 'gone2'].map((id) => {
      const tx = new Transaction<Effect>(d.state);
      const input = LinkLineageInput.parse({ workflowId, id, operation: 'op', inputs: ['b'], outputs: ['c'] });
      applyCommand({ state: d.state, tx, ctx: { now: 5_000, monotonicNow: 5_000, newId: (prefix) => `${prefix}_x`, settings: SETTINGS } }, { type: 'lineage.link', input, actor: ADMIN });
      return tx;
    });
    expect(kept(d, workflowId).kept.upstream.c).toEqual(['gone1', 'gone2']);
    for (const tx of batch.reverse()) tx.rollback();
    expect(kept(d, workflowId)).toEqual({ kept: before, rebuilt: before });
    link(['b'], ['c'], 'after');
    expect(kept(d, workflowId).kept.runs).toEqual(['kept', 'after']);
  });
});

describe('lineage reads that cost what they return (domain)', () => {
  it('stops a walk at `limit` nodes or edges, nearest first, with truncated, every edge joining two of its nodes', () => {
    const ids = Array.from({ length: 30 }, (_, i) => `n${i}`);
    const { d, workflowId, link } = setup(ids);
    // A chain n0 → n1 → … → n29, and a fan n0 → n10..n19.
    for (let i = 0; i < 29; i++) link([ids[i]!], [ids[i + 1]!]);
    link(['n0'], ids.slice(10, 20));
    const walk = (limit: number) => traverse(d.state, LineageQuery.parse({ workflowId, dataId: 'n0', limit }), 'downstream');
    const whole = walk(100);
    expect([whole.nodes.length, whole.edges.length, whole.truncated]).toEqual([30, 39, false]);
    for (const limit of [1, 5, 12, 29]) {
      const part = walk(limit);
      const nodes = new Set(part.nodes.map((node) => node.id));
      expect([limit, part.truncated, part.nodes.length <= limit, part.edges.length <= limit]).toEqual([limit, true, true, true]);
      expect(part.edges.every((e) => nodes.has(e.from) && nodes.has(e.to))).toBe(true);
      // Nearest first: the nodes are those of the whole walk with the smallest depths.
      expect(part.nodes).toEqual(whole.nodes.slice(0, part.nodes.length));
    }
  });

  it('stops a walk that would follow more than FOLLOWED_PER_WALK links, even when it has little to return', () => {
    const ys = Array.from({ length: 1000 }, (_, i) => `y${i}`);
    const { d, workflowId, link } = setup(['x', ...ys]);
    link(ys, ['x']);
    // Runs into every y from x and the ys: a walk at maxDepth looks through all their inputs, each already met.
    for (let run = 0; run * 1000 <= FOLLOWED_PER_WALK; run++) link(['x', ...ys.slice(0, 999)], ys);
    const walk = traverse(d.state, LineageQuery.parse({ workflowId, dataId: 'x', maxDepth: 1, limit: 2000 }), 'upstream');
    expect([walk.nodes.length, walk.edges.length, walk.truncated]).toEqual([1001, 1000, true]);
  });

  it('pages through the whole graph, each node, transformation and edge once, runs recorded between pages included', () => {
    const { d, workflowId, link } = setup(['a', 'b', 'c', 'd', 'e']);
    link(['a', 'b'], ['c', 'd'], 'r1');
    link(['c'], ['e'], 'r2');
    const whole = graphPages(d, workflowId, 100);
    expect(whole).toEqual([{ nodes: ['a', 'b', 'c', 'd', 'e'], transformations: ['r1', 'r2'], edges: ['a>c', 'a>d', 'b>c', 'b>d', 'c>e'] }]);
    for (const limit of [1, 2, 3, 4, 7]) {
      const pages = graphPages(d, workflowId, limit);
      const sizes = pages.map((page) => page.nodes.length + page.transformations.length + page.edges.length);
      expect(sizes.slice(0, -1).every((size) => size === limit)).toBe(true);
      const gathered = { nodes: pages.flatMap((p) => p.nodes), transformations: pages.flatMap((p) => p.transformations), edges: pages.flatMap((p) => p.edges) };
      expect([limit, gathered]).toEqual([limit, whole[0]]);
    }
    // A run recorded while a client pages through the runs comes on a later page.
    const first = lineageGraph(d.state, LineageGraphQuery.parse({ workflowId, limit: 6 }));
    link(['d'], ['a'], 'r3');
    const rest = lineageGraph(d.state, LineageGraphQuery.parse({ workflowId, limit: 100, cursor: first.nextCursor! }));
    expect([first.transformations.map((r) => r.id), rest.transformations.map((r) => r.id), rest.nextCursor]).toEqual([['r1'], ['r2', 'r3'], null]);
  });

  it('refuses a graph cursor that is not one, or names a run the workflow does not have, with VALIDATION', () => {
    const { d, workflowId, link } = setup(['a', 'b']);
    link(['a'], ['b'], 'r1');
    const graph = (cursor: string) => () => lineageGraph(d.state, LineageGraphQuery.parse({ workflowId, cursor }));
    expect(codeOf(graph('garbage'))).toBe('VALIDATION');
    expect(codeOf(graph(Buffer.from(JSON.stringify(['r', 'no-such-run', 0])).toString('base64url')))).toBe('VALIDATION');
    expect(codeOf(graph(Buffer.from(JSON.stringify(['r', 'r1', -1])).toString('base64url')))).toBe('VALIDATION');
  });
});
