import type { Waiting, WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { CommandContext } from '../machinery/context.ts';
import { filingFrom, sameWaiting, serves, takesWork, type Filing, type Need } from './capable-agents.ts';
import { orderKey, type Bucket } from './work-index.ts';

// The `waiting` marker of queued orders that no agent that takes work can do, and the count of
// them each workflow keeps (`unservable`). Orders of one kind (task type and requirements) share
// their need's verdict; it changes only when an agent comes, goes or changes what it declares, and
// then only for the needs of its task types. An order every agent able to do it declined is
// marked `all_declined` (CapableAgents.markerFor): when one of those agents comes or goes, only
// the buckets whose declines name as many agents as can do the work are walked.

/**
 * Writes an order's marker if it changes; returns how the workflow's count moves (-1, 0 or 1). An
 * `all_declined` one gets its `retryAt` (kept while it stays so) and a timer for it (sweep.ts).
 */
function writeWaiting(t: CommandContext, order: WorkOrder, waiting: Waiting | null): number {
  const was = order.waiting ?? null;
  const next = waiting?.reason === 'all_declined' ? allDeclined(t, was) : waiting;
  if (sameWaiting(was, next) && was?.retryAt === next?.retryAt) return 0;
  t.tx.set(order.workflowId, ['workOrders', order.id, 'waiting'], next);
  if (next?.retryAt !== undefined && next.retryAt !== was?.retryAt) t.state.work.watchDeclines(order, next.retryAt, t.ctx.now, t.ctx.monotonicNow, { undo: t.tx });
  return (next ? 1 : 0) - (was ? 1 : 0);
}

/**
 * The `all_declined` marker of an order marked `was`: with the time its declines are forgotten,
 * declinedRetryMs from when it was first marked so, or without one when the hub never forgets them.
 */
function allDeclined(t: CommandContext, was: Waiting | null): Waiting {
  const after = t.ctx.settings.declinedRetryMs;
  if (!after) return { reason: 'all_declined' };
  if (was?.reason === 'all_declined' && was.retryAt !== undefined) return was;
  return { reason: 'all_declined', retryAt: t.ctx.now + after };
}

/** Moves a workflow's count of unservable orders by `delta`, in one write. */
function count(t: CommandContext, workflow: Workflow, delta: number): void {
  if (delta !== 0) t.tx.set(workflow.id, ['unservable'], (workflow.unservable ?? 0) + delta);
}

/**
 * Gives the queued orders of a bucket (one workflow) their marker: their need's, or `all_declined`.
 * Orders declined by fewer than `declines` agents keep theirs (the caller knows it stays).
 */
function markBucket(t: CommandContext, bucket: Bucket, declines = 0): void {
  const work = t.state.work;
  const workflow = t.state.workflows.get(bucket.workflowId);
  // A paused workflow's orders wait for its resume, not for an agent: they carry no marker meanwhile.
  if (!workflow || work.isPaused(bucket.workflowId)) return;
  let delta = 0;
  for (const entry of bucket.queue.values()) {
    if (entry.declinedBy.length < declines || !work.isCurrent(entry)) continue;
    const order = workflow.workOrders[entry.workOrderId];
    if (order?.state === 'queued') delta += writeWaiting(t, order, work.capable.markerFor(bucket.need, entry.declinedBy, t.tx));
  }
  count(t, workflow, delta);
}

/** A need's verdict changed: its orders, in every workflow, carry the new one. O(its queued orders). */
function changeNeed(t: CommandContext, need: Need<Bucket>, waiting: Waiting | null): void {
  const before = need.waiting;
  need.waiting = waiting;
  t.tx.onUndo(() => (need.waiting = before));
  for (const bucket of need.buckets) markBucket(t, bucket);
}

/**
 * An agent able to do a need's work came (`joined`) or went, the need's verdict unchanged: orders
 * that every such agent declined, before or after, are marked anew. Such an order names all of the
 * fewer agents in its declines, so only buckets whose declines name that many are walked.
 */
function reviewDeclines(t: CommandContext, need: Need<Bucket>, joined: boolean): void {
  const serving = t.state.work.capable.serving(need, t.tx);
  const fewer = joined ? serving - 1 : serving;
  for (const bucket of need.buckets) if (bucket.declines.size >= fewer) markBucket(t, bucket, fewer);
}

/**
 * The verdict of a need once an agent filed as `before` is filed as `after` (undefined: it does not
 * take work), or undefined when it stays. Only an agent that could do the work and no longer can
 * may leave a need without one (then the other agents are looked at); a need without one gets one
 * from an agent that can do it, and otherwise changes only between "no agent of the task type"
 * and "none holds the requirements", which is O(1) to tell.
 */
function verdictAfter(t: CommandContext, need: Need<Bucket>, before: Filing | undefined, after: Filing | undefined): Waiting | null | undefined {
  const capable = t.state.work.capable;
  const servesAfter = after !== undefined && serves(after, need);
  if (need.waiting === null) return before !== undefined && serves(before, need) && !servesAfter ? capable.verdict(need) : undefined;
  if (servesAfter) return null;
  const typeServed = capable.declares(need.taskType);
  if (typeServed === (need.waiting.taskType === undefined)) return undefined;
  return typeServed ? { reason: 'no_capable_agent', missing: need.requirements } : { reason: 'no_capable_agent', taskType: need.taskType };
}

/**
 * Files an agent anew among those that take work, after its status, task types or capabilities
 * may have changed (registration, draining, offline, forgotten), and re-marks the orders of the
 * needs whose verdict that changes. Nothing changes, at O(its task types and capabilities), for an
 * agent filed as before: a reconnect within the grace period, a heartbeat, a change of load.
 */
export function reviewAgent(t: CommandContext, agentId: string): void {
  const capable = t.state.work.capable;
  const agent = t.state.agents && Object.hasOwn(t.state.agents, agentId) ? t.state.agents[agentId] : undefined;
  const after = agent && takesWork(agent) ? filingFrom(agent) : undefined;
  const before = capable.filingOf(agentId);
  if (sameFiling(before, after)) return;
  capable.unfile(agentId);
  if (after) capable.file(agentId, after);
  t.tx.onUndo(() => {
    capable.unfile(agentId);
    if (before) capable.file(agentId, before);
  });
  for (const need of capable.needsFor([...(before?.taskTypes ?? []), ...(after?.taskTypes ?? [])])) {
    const servedBefore = before !== undefined && serves(before, need);
    const servedAfter = after !== undefined && serves(after, need);
    capable.moveServing(need, Number(servedAfter) - Number(servedBefore), t.tx);
    const waiting = verdictAfter(t, need, before, after);
    if (waiting !== undefined && !sameWaiting(waiting, need.waiting)) changeNeed(t, need, waiting);
    else if (need.waiting === null && servedBefore !== servedAfter) reviewDeclines(t, need, servedAfter);
  }
}

function sameFiling(a: Filing | undefined, b: Filing | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const same = (x: readonly string[], y: readonly string[]) => x.length === y.length && x.every((item, i) => item === y[i]);
  return same(a.taskTypes, b.taskTypes) && same(a.capabilities, b.capabilities);
}

/**
 * Gives orders just queued (or found unsettled by a rebuild) their need's marker: a ready order
 * nobody can take is marked, one backing off is not (yet). One write of each workflow's count.
 */
export function settleWaiting(t: CommandContext, ...lists: Array<Iterable<{ workflowId: string; workOrderId: string; orderKey?: string }>>): void {
  const work = t.state.work;
  const deltas = new Map<Workflow, number>();
  for (const orders of lists) {
    for (const item of orders) {
      const workflow = t.state.workflows.get(item.workflowId);
      const order = workflow?.workOrders[item.workOrderId];
      if (!workflow || order?.state !== 'queued' || work.isPaused(item.workflowId)) continue;
      const entry = work.queued.get(item.orderKey ?? orderKey(item.workflowId, item.workOrderId));
      const waiting = entry ? work.capable.markerFor(entry.bucket.need, entry.declinedBy, t.tx) : null;
      const delta = writeWaiting(t, order, waiting);
      if (delta !== 0) deltas.set(workflow, (deltas.get(workflow) ?? 0) + delta);
    }
  }
  for (const [workflow, delta] of deltas) count(t, workflow, delta);
}

/** Moves a workflow's count of unservable orders by `delta` (an order leaving the queue with its marker: -1; a bulk change's sum of them). */
export function moveUnservable(t: CommandContext, workflow: Workflow, delta: number): void {
  count(t, workflow, delta);
}

/** Clears the markers of a workflow's queued orders as it pauses (they wait for its resume): O(its queued orders), none when none is marked. */
export function unmarkPaused(t: CommandContext, workflow: Workflow, buckets: Iterable<Bucket>): void {
  if (!workflow.unservable) return;
  let delta = 0;
  for (const bucket of buckets) {
    for (const entry of bucket.queue.values()) {
      const order = workflow.workOrders[entry.workOrderId];
      if (order?.state === 'queued' && order.waiting && t.state.work.isCurrent(entry)) delta += writeWaiting(t, order, null);
    }
  }
  count(t, workflow, delta);
}

/**
 * Marks a resumed workflow's queued orders as their needs and declines say. A bucket whose need
 * has an agent and whose orders nobody declined holds no marker: it is not walked.
 */
export function markResumed(t: CommandContext, buckets: Iterable<Bucket>): void {
  for (const bucket of buckets) if (bucket.need.waiting !== null || bucket.declines.size > 0) markBucket(t, bucket);
}
