import { HubError } from '../../../shared/errors.ts';
import type { ReplyOf } from '../../../shared/contract.ts';
import type { DataReference } from '../../../shared/schemas/data.ts';
import type { LineageEdge, LineageNode, LineageTraversal, Transformation } from '../../../shared/schemas/lineage.ts';
import { requireWorkflow } from '../machinery/context.ts';
import { FOLLOWED_PER_WALK } from '../machinery/read-bounds.ts';
import { requireData } from './inventory.ts';
import type { LineageIndex } from './lineage-index.ts';
import type { SortPlace } from './reference-index.ts';
import { versionOf, type HubState } from '../machinery/state.ts';

type Direction = 'upstream' | 'downstream';

function edge(from: string, to: string, run: Transformation): LineageEdge {
  return { from, to, transformationId: run.id, operation: run.operation, workOrderId: run.workOrderId };
}

function nodeOf(ref: DataReference, depth: number): LineageNode {
  return { id: ref.id, path: ref.path, dataType: ref.dataType, status: ref.status, depth };
}

/**
 * Breadth-first walk from one reference, up (what it was made from) or down (what was made from
 * it), following the runs the lineage index files under each reference it meets. Each reference
 * is visited once, so cycles end the walk instead of looping; an edge back to a visited reference
 * is still reported. Nodes carry their shortest distance from the root. The walk stops, with
 * `truncated`, at maxDepth, at `limit` nodes or `limit` edges (the nearest first), or after
 * following FOLLOWED_PER_WALK links; every edge it returns joins two of its nodes.
 */
export function traverse(state: HubState, input: { workflowId: string; dataId: string; maxDepth?: number | undefined; limit: number }, direction: Direction): LineageTraversal {
  const workflow = requireWorkflow(state, input.workflowId);
  requireData(workflow, input.dataId);
  const index = state.inventory.lineage(workflow);
  const depth = new Map<string, number>([[input.dataId, 0]]);
  const queue = [input.dataId];
  const edges: LineageEdge[] = [];
  const seenEdges = new Set<string>();
  let truncated = false;
  let followed = 0;
  walk: for (let head = 0; head < queue.length; head++) {
    const id = queue[head]!;
    const level = depth.get(id)!;
    const deepest = input.maxDepth !== undefined && level >= input.maxDepth;
    // At maxDepth a reference only says whether the graph goes on; once that is known, nothing is left to learn.
    if (deepest && truncated) break;
    for (const run of index.runsOf(id, direction)) {
      for (const next of direction === 'upstream' ? run.inputs : run.outputs) {
        if (++followed > FOLLOWED_PER_WALK) {
          truncated = true;
          break walk;
        }
        const isNew = !depth.has(next);
        if (deepest) {
          if (isNew) {
            truncated = true;
            continue walk;
          }
          continue;
        }
        if (isNew && queue.length === input.limit) {
          truncated = true;
          break walk;
        }
        const [from, to] = direction === 'upstream' ? [next, id] : [id, next];
        const key = `${run.id}\u0000${from}\u0000${to}`;
        if (!seenEdges.has(key)) {
          if (edges.length === input.limit) {
            truncated = true;
            break walk;
          }
          seenEdges.add(key);
          edges.push(edge(from, to, run));
        }
        if (isNew) {
          depth.set(next, level + 1);
          queue.push(next);
        }
      }
    }
  }
  const nodes = queue.flatMap((id) => (Object.hasOwn(workflow.data, id) ? [nodeOf(workflow.data[id]!, depth.get(id)!)] : []));
  return { version: versionOf(state, workflow.id), root: input.dataId, direction, nodes, edges, truncated };
}

/** Where a page of the graph starts: after a node (in creation order), or at one item of a run (0: the run, then its edges). */
type GraphPlace = { phase: 'nodes'; after?: SortPlace } | { phase: 'runs'; place: number; item: number };

function encodeGraphCursor(cursor: ['n', number, string] | ['r', string, number]): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeGraphCursor(cursor: string | undefined, runs: LineageIndex): GraphPlace {
  if (cursor === undefined) return { phase: 'nodes' };
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 3) {
      const [phase, first, second] = value as unknown[];
      if (phase === 'n' && typeof first === 'number' && typeof second === 'string') return { phase: 'nodes', after: [first, second] };
      const place = phase === 'r' && typeof first === 'string' ? runs.placeOf(first) : undefined;
      if (place !== undefined && Number.isSafeInteger(second) && (second as number) >= 0) return { phase: 'runs', place, item: second as number };
    }
  } catch {
    // Falls through to the error below.
  }
  throw new HubError('VALIDATION', 'cursor is not a nextCursor of lineage.graph for this workflow');
}

/**
 * A workflow's lineage graph, a page of at most `limit` entries at a time: first every reference
 * (a node, depth 0) in creation order, then every transformation in the lineage index's order
 * (recording order, array-index ids first), each followed by its input → output edges. Each
 * entry comes once across the pages; a page starts at its cursor, so it costs what it holds.
 */
export function lineageGraph(state: HubState, input: { workflowId: string; limit: number; cursor?: string | undefined }): ReplyOf<'control', 'lineage.graph'> {
  const workflow = requireWorkflow(state, input.workflowId);
  const runs = state.inventory.lineage(workflow);
  let at = decodeGraphCursor(input.cursor, runs);
  const nodes: LineageNode[] = [];
  const edges: LineageEdge[] = [];
  const transformations: Transformation[] = [];
  let room = input.limit;
  const reply = (nextCursor: string | null) => ({ version: versionOf(state, workflow.id), nodes, edges, transformations, nextCursor });
  if (at.phase === 'nodes') {
    let last = at.after;
    for (const [place, ref] of state.inventory.references(workflow).places('createdAt', false, at.after)) {
      if (room === 0) return reply(encodeGraphCursor(['n', last![0] as number, last![1]]));
      nodes.push(nodeOf(ref, 0));
      last = place;
      room--;
    }
    at = { phase: 'runs', place: 0, item: 0 };
  }
  for (let place = at.place, item = at.item; place < runs.size; place++, item = 0) {
    const run = runs.runAt(place)!;
    const width = run.outputs.length;
    const items = 1 + run.inputs.length * width;
    for (; item < items; item++) {
      if (room === 0) return reply(encodeGraphCursor(['r', run.id, item]));
      if (item === 0) transformations.push(run);
      else edges.push(edge(run.inputs[Math.floor((item - 1) / width)]!, run.outputs[(item - 1) % width]!, run));
      room--;
    }
  }
  return reply(null);
}
