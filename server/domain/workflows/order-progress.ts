import type { ProgressSource } from '../../../shared/schemas/summary.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';

// Progress from work orders, for a workflow without stage updates, and shown beside the stages'
// otherwise. Pure (a memo aside) and O(1): it reads the per-state counts the workflow keeps.

/** The states in which an order counts as done for progress: it has ended and nothing more will happen to it. */
const ENDED = ['completed', 'failed', 'cancelled'] as const;

/**
 * The share of a workflow's orders that have ended (completed, failed or cancelled), 0..100 to two
 * decimals, from its per-state counts: O(1). Null when it has none. 100 only once all have ended:
 * 20,001 of 20,002 rounded to 100 (percent-text.ts keeps the same rule).
 */
export function orderShare(counts: Workflow['workOrderCounts']): number | null {
  let total = 0;
  for (const state in counts) total += counts[state as keyof typeof counts];
  if (total === 0) return null;
  let ended = 0;
  for (const state of ENDED) ended += counts[state] ?? 0;
  const share = Math.round((ended / total) * 10_000) / 100;
  return ended < total ? Math.min(share, 99.99) : share;
}

/**
 * A stage name each stages object was seen to hold. Listing its keys (Object.keys, for…in) costs
 * every stage, ~1 ms for 10,000, and this is asked at every order's creation and end.
 */
const someStage = new WeakMap<object, string>();

/** Whether a workflow has a stage: O(1) once one was seen (checked still there, as a rollback may take it out). */
function hasStages(stages: Workflow['stages']): boolean {
  const known = someStage.get(stages);
  if (known !== undefined && Object.hasOwn(stages, known)) return true;
  for (const name in stages) {
    someStage.set(stages, name);
    return true;
  }
  return false;
}

/** Where `progress` comes from: the stages once there is one, else the orders when there are some. */
export function progressSource(workflow: Pick<Workflow, 'stages' | 'workOrderCounts'>): ProgressSource {
  if (hasStages(workflow.stages)) return 'stages';
  return orderShare(workflow.workOrderCounts) === null ? 'stages' : 'orders';
}

/** A workflow's `orderProgress`; for one written before it was kept, its orders' share now. */
export function orderProgressOf(workflow: Pick<Workflow, 'orderProgress' | 'workOrderCounts'>): number | null {
  return workflow.orderProgress !== undefined ? workflow.orderProgress : orderShare(workflow.workOrderCounts);
}
