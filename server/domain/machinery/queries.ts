import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import { compareCreation, workflowHeader, type Workflow, type WorkflowHeader } from '../../../shared/schemas/workflow.ts';
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
function firstAfter(sorted: readonly WorkflowHeader[], createdAt: number, id: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const header = sorted[middle]!;
    if (compareCreation(header.createdAt, header.id, createdAt, id) <= 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The live workflows in list order. Each one's key is the latest creation time up to it in creation
 * order: a clock that stepped back would otherwise put one out of order, and a page after an
 * archived cursor would skip it. Workflows with the same key (created in one millisecond, or while
 * the clock caught up) come in a run, which is put in id order; only that run is held and sorted.
 */
class LiveInOrder {
  /** The key of the run being read: that of the workflow `peek` gives. */
  key = -Infinity;
  private readonly run: Workflow[] = [];
  private at = 0;
  private ahead: Workflow | undefined;
  private aheadKey = -Infinity;

  constructor(private readonly workflows: Iterator<Workflow>) {
    this.readAhead();
  }

  /** The next workflow in list order, left unread; undefined at the end. */
  peek(): Workflow | undefined {
    if (this.at === this.run.length) this.nextRun();
    return this.run[this.at];
  }

  /** Reads the next workflow in list order; undefined at the end. */
  next(): Workflow | undefined {
    const workflow = this.peek();
    this.at++;
    return workflow;
  }

  private nextRun(): void {
    this.run.length = 0;
    this.at = 0;
    this.key = this.aheadKey;
    while (this.ahead && this.aheadKey === this.key) {
      this.run.push(this.ahead);
      this.readAhead();
    }
    if (this.run.length > 1) this.run.sort((x, y) => compareCreation(0, x.id, 0, y.id));
  }

  private readAhead(): void {
    const next = this.workflows.next();
    this.ahead = next.done ? undefined : next.value;
    if (this.ahead) this.aheadKey = Math.max(this.aheadKey, this.ahead.createdAt);
  }
}

/**
 * Workflows oldest first (ties by id), filtered by status, a page at a time; the cursor is the last
 * id seen. Those in memory (by their key, see LiveInOrder) and the `archived` ones (by createdAt)
 * are merged in one order, by key then id; an id in both (archived, not yet evicted) is shown from
 * memory. A page starts after its cursor's place in that order, wherever the cursor is kept now,
 * so every workflow is listed once across pages whatever is archived between them, and also after
 * the wall clock stepped back between creations as long as nothing from there is archived meanwhile
 * (a key above its createdAt changes when that workflow, or the one whose time it took, leaves memory).
 */
export function listWorkflows(
  state: HubState,
  input: ParsedRequestOf<'control', 'workflow.list'>,
  visible: (workflowId: string) => boolean = () => true,
  archive: ArchivedList = { headers: () => [], header: () => undefined },
): ReplyOf<'control', 'workflow.list'> {
  const archived = archive.headers();
  const cursor = input.cursor;
  const live = new LiveInOrder(state.workflows.values());
  let archivedFrom = 0;
  if (cursor !== undefined) {
    // A cursor this reader may not see is as unknown as one that does not exist.
    if (!visible(cursor)) throw new HubError('VALIDATION', `unknown cursor ${cursor}`);
    let key: number;
    if (state.workflows.has(cursor)) {
      // The cursor is in memory, so it is met; the live list then goes on right after it.
      while (live.next()!.id !== cursor);
      key = live.key;
    } else {
      const header = archive.header(cursor);
      if (!header) throw new HubError('VALIDATION', `unknown cursor ${cursor}`);
      key = header.createdAt;
      for (let next = live.peek(); next && compareCreation(live.key, next.id, key, cursor) < 0; next = live.peek()) live.next();
    }
    archivedFrom = firstAfter(archived, key, cursor);
  }
  const withArchived = input.status === undefined || ENDED_STATUSES.has(input.status);
  let a = withArchived ? archivedFrom : archived.length;
  const items: WorkflowHeader[] = [];
  let more = false;
  for (;;) {
    const l = live.peek();
    const header = archived[a];
    let candidate: WorkflowHeader;
    if (header && (!l || compareCreation(header.createdAt, header.id, live.key, l.id) < 0)) {
      candidate = header;
      a++;
      if (state.workflows.has(candidate.id)) continue;
    } else if (l) {
      candidate = live.next()!;
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
