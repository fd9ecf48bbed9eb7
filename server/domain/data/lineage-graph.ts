import type { ReplyOf } from '../../../shared/contract.ts';
import type { LineageEdge, LineageNode, LineageTraversal, Transformation } from '../../../shared/schemas/lineage.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { requireWorkflow } from '../machinery/context.ts';
import { requireData } from './inventory.ts';
import { versionOf, type HubState } from '../machinery/state.ts';

type Direction = 'upstream' | 'downstream';

function edge(from: string, to: string, run: Transformation): LineageEdge {
  return { from, to, transformationId: run.id, operation: run.operation, workOrderId: run.workOrderId };
}

function nodeOf(workflow: Workflow, id: string, depth: number): LineageNode | undefined {
  const ref = workflow.data[id];
  return ref && { id, path: ref.path, dataType: ref.dataType, status: ref.status, depth };
}

/** Transformations by the reference they lead to (upstream) or start from (downstream). */
function indexRuns(workflow: Workflow, direction: Direction): Map<string, Transformation[]> {
  const index = new Map<string, Transformation[]>();
  for (const run of Object.values(workflow.lineage)) {
    for (const id of direction === 'upstream' ? run.outputs : run.inputs) {
      const runs = index.get(id);
      if (runs) runs.push(run);
      else index.set(id, [run]);
    }
  }
  return index;
}

/**
 * Breadth-first walk from one reference, up (what it was made from) or down (what was made from
 * it). Each reference is visited once, so cycles end the walk instead of looping; an edge back to
 * a visited reference is still reported. Nodes carry their shortest distance from the root.
 */
export function traverse(state: HubState, input: { workflowId: string; dataId: string; maxDepth?: number | undefined }, direction: Direction): LineageTraversal {
  const workflow = requireWorkflow(state, input.workflowId);
  requireData(workflow, input.dataId);
  const index = indexRuns(workflow, direction);
  const depth = new Map<string, number>([[input.dataId, 0]]);
  const queue = [input.dataId];
  const edges: LineageEdge[] = [];
  const seenEdges = new Set<string>();
  let truncated = false;
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head]!;
    const level = depth.get(id)!;
    for (const run of index.get(id) ?? []) {
      for (const next of direction === 'upstream' ? run.inputs : run.outputs) {
        if (input.maxDepth !== undefined && level >= input.maxDepth) {
          if (!depth.has(next)) truncated = true;
          continue;
        }
        const [from, to] = direction === 'upstream' ? [next, id] : [id, next];
        const key = `${run.id}\u0000${from}\u0000${to}`;
        if (!seenEdges.has(key)) {
          seenEdges.add(key);
          edges.push(edge(from, to, run));
        }
        if (!depth.has(next)) {
          depth.set(next, level + 1);
          queue.push(next);
        }
      }
    }
  }
  const nodes = queue.map((id) => nodeOf(workflow, id, depth.get(id)!)).filter((node) => node !== undefined);
  return { version: versionOf(state, workflow.id), root: input.dataId, direction, nodes, edges, truncated };
}

/** The whole lineage graph of a workflow: every reference, every input → output edge, every run. */
export function lineageGraph(state: HubState, workflowId: string): ReplyOf<'control', 'lineage.graph'> {
  const workflow = requireWorkflow(state, workflowId);
  const transformations = Object.values(workflow.lineage);
  const edges: LineageEdge[] = [];
  for (const run of transformations) for (const from of run.inputs) for (const to of run.outputs) edges.push(edge(from, to, run));
  const nodes = Object.keys(workflow.data).map((id) => nodeOf(workflow, id, 0)!);
  return { version: versionOf(state, workflowId), nodes, edges, transformations };
}
