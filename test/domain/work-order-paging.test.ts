import { describe, expect, it } from 'vitest';
import { HubError } from '../../shared/errors.ts';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { applyCommand } from '../../server/domain/machinery/commands.ts';
import { listWorkOrders } from '../../server/domain/machinery/queries.ts';
import { EXAMINED_PER_PAGE } from '../../server/domain/machinery/read-bounds.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { ADMIN, SETTINGS, domain } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;

function setup() {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  return { d, workflowId };
}

function createOrders(d: Domain, workflowId: string, ids: string[]) {
  for (let start = 0; start < ids.length; start += 1000) {
    const orders = ids.slice(start, start + 1000).map((id) => ({ id, taskType: 't' }));
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders }));
  }
}

/** Every id, page by page; checks that each page but the last is full. */
function pageThrough(d: Domain, workflowId: string, limit: number, between?: (page: number) => void): string[] {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let page = 0; ; page++) {
    const reply = listWorkOrders(d.state, { workflowId, limit, ...(cursor ? { cursor } : {}) });
    seen.push(...reply.items.map((order) => order.id));
    if (reply.nextCursor === null) return seen;
    expect(reply.items).toHaveLength(limit);
    cursor = reply.nextCursor;
    between?.(page);
  }
}

const keysOf = (d: Domain, workflowId: string) => Object.keys(d.state.workflows.get(workflowId)!.workOrders);

describe('listing work orders a page at a time', () => {
  it('gives every order once, in creation order, and the orders added between pages at the end', () => {
    const { d, workflowId } = setup();
    createOrders(d, workflowId, Array.from({ length: 250 }, (_, i) => `o${i}`));
    const workflow = d.state.workflows.get(workflowId)!;
    const list = d.state.work.orderLists.of(workflow);
    const seen = pageThrough(d, workflowId, 100, (page) => createOrders(d, workflowId, [`late${page}a`, `late${page}b`]));
    expect(seen).toEqual(keysOf(d, workflowId));
    expect(seen).toHaveLength(254);
    expect(seen.slice(-2)).toEqual(['late1a', 'late1b']);
    // Kept up to date as orders came, not built again for each page.
    expect(d.state.work.orderLists.of(workflow)).toBe(list);
  });

  it('keeps the order JavaScript gives ids that look like array indexes, as they are added between pages', () => {
    const { d, workflowId } = setup();
    createOrders(d, workflowId, ['b', '7', 'a']);
    expect(pageThrough(d, workflowId, 2)).toEqual(['7', 'b', 'a']);
    const list = d.state.work.orderLists.of(d.state.workflows.get(workflowId)!);
    createOrders(d, workflowId, ['c', '3', '4294967295', '10']);
    // Ids added while paging land where JavaScript lists them: index-like ones before the cursor are not met again.
    const seen = pageThrough(d, workflowId, 2, (page) => createOrders(d, workflowId, [`${100 + page}`, `n${page}`]));
    expect(new Set(seen).size).toBe(seen.length);
    const named = (ids: string[]) => ids.filter((id) => /^n\d/.test(id));
    expect(named(seen)).toEqual(named(keysOf(d, workflowId)));
    expect(pageThrough(d, workflowId, 3)).toEqual(keysOf(d, workflowId));
    expect(keysOf(d, workflowId).slice(0, 5)).toEqual(['3', '7', '10', '100', '101']);
    expect(d.state.work.orderLists.of(d.state.workflows.get(workflowId)!)).toBe(list);
  });

  it('filters by state from the cursor on, and refuses an unknown cursor with VALIDATION', () => {
    const { d, workflowId } = setup();
    createOrders(d, workflowId, ['p1', 'p2', 'p3']);
    d.register('w');
    d.run('workflow.start', { workflowId });
    createOrders(d, workflowId, ['q1', 'q2']);
    const offered = listWorkOrders(d.state, { workflowId, limit: 10, state: 'offered' }).items.map((o) => o.id);
    expect(offered).toEqual(['p1']);
    expect(listWorkOrders(d.state, { workflowId, limit: 10, state: 'queued', cursor: 'p2' }).items.map((o) => o.id)).toEqual(['p3', 'q1', 'q2']);
    expect(() => listWorkOrders(d.state, { workflowId, limit: 10, cursor: 'nope' })).toThrow(HubError);
    expect(() => listWorkOrders(d.state, { workflowId, limit: 10, cursor: 'nope' })).toThrow(expect.objectContaining({ code: 'VALIDATION', message: expect.stringMatching(/unknown cursor nope/) }));
  });

  it('forgets orders whose creation was rolled back, and lists those created after them', () => {
    const { d, workflowId } = setup();
    createOrders(d, workflowId, ['a', 'b']);
    expect(pageThrough(d, workflowId, 1)).toEqual(['a', 'b']);
    // A creation undone as the hub undoes a batch whose journal write failed.
    const tx = new Transaction<Effect>(d.state);
    applyCommand(
      { state: d.state, tx, ctx: { now: 5_000, monotonicNow: 5_000, newId: (prefix) => `${prefix}_x`, settings: SETTINGS } },
      { type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'gone1', taskType: 't' }, { id: '5', taskType: 't' }, { id: 'gone2', taskType: 't' }] }), actor: ADMIN },
    );
    expect(pageThrough(d, workflowId, 10)).toEqual(['5', 'a', 'b', 'gone1', 'gone2']);
    const workflow = d.state.workflows.get(workflowId)!;
    const list = d.state.work.orderLists.of(workflow);
    tx.rollback();
    expect(pageThrough(d, workflowId, 1)).toEqual(['a', 'b']);
    // Undone in place, not found out of step and built again.
    expect(d.state.work.orderLists.of(workflow)).toBe(list);
    createOrders(d, workflowId, ['c', 'd']);
    expect(pageThrough(d, workflowId, 3)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('keeps every workflow’s list up to date as orders are added, and a snapshot of it unchanged by later additions', () => {
    const d = domain();
    const workflows = Array.from({ length: 20 }, (_, i) => d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: `q${i}` })).reply.workflow.id);
    const listOf = (workflowId: string) => d.state.work.orderLists.of(d.state.workflows.get(workflowId)!);
    const lists = workflows.map((workflowId) => {
      createOrders(d, workflowId, ['x', 'y']);
      return listOf(workflowId);
    });
    // Kept for all of them, not the last few listed.
    workflows.forEach((workflowId, i) => expect(listOf(workflowId)).toBe(lists[i]));
    const before = listOf(workflows[0]!).snapshot();
    createOrders(d, workflows[0]!, ['z', '7']);
    expect(Array.from({ length: before.length }, (_, i) => before.at(i))).toEqual(['x', 'y']);
    // In for…in order: the id that is an array index first.
    const after = listOf(workflows[0]!).snapshot();
    expect(Array.from({ length: after.length }, (_, i) => after.at(i))).toEqual(Object.keys(d.state.workflows.get(workflows[0]!)!.workOrders));
    expect(pageThrough(d, workflows[0]!, 1)).toEqual(['7', 'x', 'y', 'z']);
  });

  it('looks at no more than EXAMINED_PER_PAGE orders for a page: a filter few match gives short pages, even empty ones, that keep going', () => {
    const { d, workflowId } = setup();
    const ids = Array.from({ length: 2 * EXAMINED_PER_PAGE + 500 }, (_, i) => `o${i}`);
    createOrders(d, workflowId, ids);
    // Matches in the first stretch and the last; none in the one between.
    const cancelled = [ids[5]!, ids[6]!, ids[7]!, ids[2 * EXAMINED_PER_PAGE + 10]!];
    for (const workOrderId of cancelled) d.run('workOrder.cancel', { workflowId, workOrderId });
    const pages: Array<{ ids: string[]; nextCursor: string | null }> = [];
    let cursor: string | undefined;
    do {
      const reply = listWorkOrders(d.state, { workflowId, limit: 2, state: 'cancelled', ...(cursor ? { cursor } : {}) });
      pages.push({ ids: reply.items.map((order) => order.id), nextCursor: reply.nextCursor });
      cursor = reply.nextCursor ?? undefined;
    } while (cursor);
    expect(pages).toEqual([
      // Full: the cursor is its last item.
      { ids: [ids[5], ids[6]], nextCursor: ids[6] },
      // Short, then empty: the cursor is the last order looked at.
      { ids: [ids[7]], nextCursor: ids[EXAMINED_PER_PAGE + 6] },
      { ids: [], nextCursor: ids[2 * EXAMINED_PER_PAGE + 6] },
      { ids: [ids[2 * EXAMINED_PER_PAGE + 10]], nextCursor: null },
    ]);
  });
});
