import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import { workflowHeader, type WorkflowHeader } from '../../../shared/schemas/workflow.ts';
import { ENDED_STATUSES, requireEntity, requireWorkflow } from './context.ts';
import { versionOf, type HubState } from './state.ts';
import { summarize } from '../workflows/summary.ts';
import { EXAMINED_PER_PAGE } from './read-bounds.ts';

/** The archived workflows a list includes: headers sorted by creation, and a lookup by id. */
export interface ArchivedList {
  headers(): readonly WorkflowHeader[];
  header(workflowId: string): WorkflowHeader | undefined;
}

/** The first place in `sorted` (by createdAt) whose workflow was created at or after `createdAt`. */
function firstFrom(sorted: readonly WorkflowHeader[], createdAt: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]!.createdAt < createdAt) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Workflows in creation order, filtered by status, a page at a time; the cursor is the last id
 * seen. Those in memory and the `archived` ones (sorted by creation) are merged by creation time,
 * archived first at a tie; an id in both (archived, not yet evicted) is shown from memory. Every
 * workflow is listed once across pages, also after the wall clock stepped back between creations.
 */
export function listWorkflows(
  state: HubState,
  input: ParsedRequestOf<'control', 'workflow.list'>,
  visible: (workflowId: string) => boolean = () => true,
  archive: ArchivedList = { headers: () => [], header: () => undefined },
): ReplyOf<'control', 'workflow.list'> {
  const archived = archive.headers();
  const cursor = input.cursor;
  const live = state.workflows.values();
  // Live workflows are merged by the latest creation time up to each, in creation order: a clock
  // that stepped back would otherwise put one out of order, and a page after an archived cursor would skip it.
  let liveKey = -Infinity;
  let archivedFrom = 0;
  let liveFrom = -Infinity;
  if (cursor !== undefined) {
    // A cursor this reader may not see is as unknown as one that does not exist.
    if (!visible(cursor)) throw new HubError('VALIDATION', `unknown cursor ${cursor}`);
    if (state.workflows.has(cursor)) {
      for (let next = live.next(); !next.done; next = live.next()) {
        liveKey = Math.max(liveKey, next.value.createdAt);
        if (next.value.id === cursor) break;
      }
      archivedFrom = firstFrom(archived, liveKey + 1);
    } else {
      const header = archive.header(cursor);
      if (!header) throw new HubError('VALIDATION', `unknown cursor ${cursor}`);
      let at = firstFrom(archived, header.createdAt);
      while (archived[at]!.id !== cursor) at++;
      archivedFrom = at + 1;
      liveFrom = header.createdAt;
    }
  }
  const withArchived = input.status === undefined || ENDED_STATUSES.has(input.status);
  const nextLive = (): WorkflowHeader | undefined => {
    for (let next = live.next(); !next.done; next = live.next()) {
      liveKey = Math.max(liveKey, next.value.createdAt);
      if (liveKey >= liveFrom) return next.value;
    }
    return undefined;
  };
  let a = withArchived ? archivedFrom : archived.length;
  let l = nextLive();
  const items: WorkflowHeader[] = [];
  let more = false;
  while (a < archived.length || l) {
    let candidate: WorkflowHeader;
    if (a < archived.length && (!l || archived[a]!.createdAt <= liveKey)) {
      candidate = archived[a++]!;
      if (state.workflows.has(candidate.id)) continue;
    } else {
      candidate = l!;
      l = nextLive();
    }
    if ((input.status && candidate.status !== input.status) || !visible(candidate.id)) continue;
    if (items.length === input.limit) {
      more = true;
      break;
    }
    items.push(workflowHeader(candidate));
  }
  return { items, nextCursor: more ? items[items.length - 1]!.id : null };
}

/** One workflow's whole state and version. */
export function getWorkflow(state: HubState, workflowId: string): ReplyOf<'control', 'workflow.get'> {
  return { version: versionOf(state, workflowId), workflow: requireWorkflow(state, workflowId) };
}

/** One workflow's summary at the current version. */
export function workflowSummary(state: HubState, workflowId: string, now: number): ReplyOf<'control', 'workflow.summary'> {
  return summarize(requireWorkflow(state, workflowId), versionOf(state, workflowId), now);
}

/** One work order and its workflow's version. */
export function getWorkOrder(state: HubState, workflowId: string, workOrderId: string): ReplyOf<'control', 'workOrder.get'> {
  const workflow = requireWorkflow(state, workflowId);
  return { version: versionOf(state, workflowId), item: requireEntity(workflow.workOrders, workOrderId, 'work order', workflowId) };
}

/**
 * A workflow's work orders in creation order, optionally by state; the cursor is the last id seen.
 * A page looks at most at EXAMINED_PER_PAGE orders: past them it ends, short or even empty, with
 * the last order looked at as its cursor. The list of the workflow's order ids that paging reads
 * is built here on first use, then kept.
 */
export function listWorkOrders(state: HubState, input: ParsedRequestOf<'control', 'workOrder.list'>): ReplyOf<'control', 'workOrder.list'> {
  const workflow = requireWorkflow(state, input.workflowId);
  const list = state.work.orderLists.of(workflow);
  let from = 0;
  if (input.cursor !== undefined) {
    const place = list.placeOf(input.cursor);
    if (place === undefined) throw new HubError('VALIDATION', `unknown cursor ${input.cursor}`);
    from = place + 1;
  }
  const items = [];
  const end = Math.min(list.size, from + EXAMINED_PER_PAGE);
  let place = from;
  for (; place < end; place++) {
    const order = workflow.workOrders[list.idAt(place)!]!;
    if (input.state && order.state !== input.state) continue;
    if (items.length === input.limit) break;
    items.push(order);
  }
  if (place === list.size) return { items, nextCursor: null };
  // Full: the next page starts after the last item. Short: after the last order looked at.
  return { items, nextCursor: items.length === input.limit ? items[items.length - 1]!.id : list.idAt(place - 1)! };
}
