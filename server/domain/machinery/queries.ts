import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import { compareCreation, workflowHeader, type Workflow, type WorkflowHeader } from '../../../shared/schemas/workflow.ts';
import type { Created } from '../../../shared/creation-order.ts';
import { ENDED_STATUSES, requireEntity, requireWorkflow } from './context.ts';
import { versionOf, type HubState } from './state.ts';
import { summarize } from '../workflows/summary.ts';
import { EXAMINED_PER_PAGE } from './read-bounds.ts';

/** The archived workflows a list includes: headers in list order (see compareCreation), and a lookup by id. */
export interface ArchivedList {
  headers(): readonly WorkflowHeader[];
  header(workflowId: string): WorkflowHeader | undefined;
}

/** The first place in `sorted` (in list order) after the workflow `id` created at `createdAt`. */
function firstAfter(sorted: readonly Created[], createdAt: number, id: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const item = sorted[middle]!;
    if (compareCreation(item.createdAt, item.id, createdAt, id) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Workflows oldest first (ties by id), or newest first with `order: 'desc'`, filtered by status, a
 * page at a time; the cursor is the last id seen. Those in memory and the archived ones are merged
 * by that one key, which never changes (an id in both, archived and not yet evicted, is shown from
 * memory). A page starts after its cursor's place, wherever the cursor is kept now, so every
 * workflow is listed once across pages whatever is archived between them.
 */
export function listWorkflows(
  state: HubState,
  input: ParsedRequestOf<'control', 'workflow.list'>,
  visible: (workflowId: string) => boolean = () => true,
  archive: ArchivedList = { headers: () => [], header: () => undefined },
): ReplyOf<'control', 'workflow.list'> {
  const live = state.listed.all();
  const withArchived = input.status === undefined || ENDED_STATUSES.has(input.status);
  const archived = withArchived ? archive.headers() : [];
  const step = input.order === 'desc' ? -1 : 1;
  // Where each list starts: its first item after the cursor's place in the order read.
  let l = step > 0 ? 0 : live.length - 1;
  let a = step > 0 ? 0 : archived.length - 1;
  const cursor = input.cursor;
  if (cursor !== undefined) {
    // A cursor this reader may not see is as unknown as one that does not exist.
    const place = visible(cursor) ? (state.workflows.get(cursor) ?? archive.header(cursor)) : undefined;
    if (!place) throw new HubError('VALIDATION', `unknown cursor ${cursor}`);
    l = firstAfter(live, place.createdAt, cursor);
    a = firstAfter(archived, place.createdAt, cursor);
    // Newest first: the last one before it (firstAfter is past the cursor itself where it is kept).
    if (step < 0) {
      l -= live[l - 1]?.id === cursor ? 2 : 1;
      a -= archived[a - 1]?.id === cursor ? 2 : 1;
    }
  }
  const items: WorkflowHeader[] = [];
  let more = false;
  for (;;) {
    const next = live[l];
    const header = archived[a];
    let candidate: Workflow | WorkflowHeader;
    if (header && (!next || compareCreation(header.createdAt, header.id, next.createdAt, next.id) * step < 0)) {
      a += step;
      if (state.workflows.has(header.id)) continue;
      candidate = header;
    } else if (next) {
      l += step;
      candidate = state.workflows.get(next.id)!;
    } else break;
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
