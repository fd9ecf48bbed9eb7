import { describe, expect, it } from 'vitest';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { applyPatch, compactOps, type PatchOp } from '../../shared/patch.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { release } from '../../server/domain/work/work-orders.ts';
import { schedule } from '../../server/domain/work/scheduler.ts';
import { changeStatus } from '../../server/domain/workflows/workflows.ts';
import { SETTINGS, domain } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;

/** Orders a start meets: ready ones nobody serves and ones an agent serves, one blocked, one failing for a cancelled dependency, one for a missing input. */
const ORDERS = [
  ...Array.from({ length: 20 }, (_, i) => ({ id: `nobody-${i}`, taskType: 'nobody' })),
  ...Array.from({ length: 4 }, (_, i) => ({ id: `work-${i}`, taskType: 'work' })),
  { id: 'blocked', taskType: 'work', dependencies: ['work-3'] },
  { id: 'doomed', taskType: 'work', dependencies: ['gone'] },
  { id: 'gone', taskType: 'work' },
];

/** A pending workflow of ORDERS (one cancelled) and an agent that takes `work`. */
function pendingWorkflow(): { d: Domain; workflowId: string } {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
  d.register('worker', { taskTypes: ['work'], maxConcurrentTasks: 2 });
  d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: ORDERS }));
  d.run('workOrder.cancel', { workflowId, workOrderId: 'gone', reason: 'early' });
  return { d, workflowId };
}

/** The previous workflow.start: every pending order released on its own, each writing its workflow's counts. */
function startOneByOne(d: Domain, workflowId: string): Transaction<Effect> {
  const tx = new Transaction<Effect>(d.state);
  const t = { state: d.state, tx, ctx: { now: 1_000, monotonicNow: 1_000, newId: (prefix: string) => `${prefix}_${tx.effects.length}`, settings: SETTINGS } };
  changeStatus(t, workflowId, 'start');
  const workflow = d.state.workflows.get(workflowId)!;
  for (const order of Object.values(workflow.workOrders)) if (order.state === 'pending') release(t, workflow, order);
  schedule(t);
  return tx;
}

const writesAt = (ops: PatchOp[], path: string) => ops.filter((op) => op.path === path).length;

describe('bulk releases of work orders', () => {
  it("workflow.start ends as releasing each order on its own did, with the workflow's counts written once", () => {
    const bulk = pendingWorkflow();
    const single = pendingWorkflow();
    const before = JSON.parse(JSON.stringify(bulk.d.state.workflows.get(bulk.workflowId)));
    const { tx } = bulk.d.run('workflow.start', { workflowId: bulk.workflowId });
    const reference = startOneByOne(single.d, single.workflowId);

    const after = bulk.d.state.workflows.get(bulk.workflowId)!;
    expect(after).toEqual(single.d.state.workflows.get(single.workflowId));
    expect(after.workOrderCounts).toMatchObject({ pending: 0, queued: 22, offered: 2, blocked: 1, failed: 1, cancelled: 1 });
    expect(after.unservable).toBe(20);
    expect(tx.effects.map((effect) => effect.type)).toEqual(reference.effects.map((effect) => effect.type));
    const ops = tx.changes.get(bulk.workflowId)!;
    expect(applyPatch(before, compactOps(ops, { fold: true }))).toEqual(after);
    expect(applyPatch(JSON.parse(JSON.stringify(before)), ops)).toEqual(after);
    // (The scheduler's two offers after it move the queued count on their own.)
    for (const path of ['/workOrderCounts/pending', '/workOrderCounts/blocked', '/workOrderCounts/failed', '/updatedAt']) expect(writesAt(ops, path), path).toBe(1);
    // The reference wrote them once per order.
    expect(writesAt(reference.changes.get(single.workflowId)!, '/workOrderCounts/pending')).toBeGreaterThan(20);
  });

  it('workOrder.createMany writes the pending count once, and in a running workflow each new order once with its state', () => {
    const d = domain();
    const pending = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'p', userQuery: 'q' })).reply.workflow.id;
    const orders = Array.from({ length: 30 }, (_, i) => ({ id: `o${i}`, taskType: 'nobody', dependencies: i === 29 ? ['o0'] : [] }));
    const created = d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: pending, orders })).tx.changes.get(pending)!;
    expect(d.state.workflows.get(pending)!.workOrderCounts.pending).toBe(30);
    expect(writesAt(created, '/workOrderCounts/pending')).toBe(1);

    const running = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'r', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId: running });
    const before = JSON.parse(JSON.stringify(d.state.workflows.get(running)));
    const { tx } = d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: running, orders }));
    const after = d.state.workflows.get(running)!;
    expect(after.workOrderCounts).toMatchObject({ pending: 0, queued: 29, blocked: 1 });
    expect(after.unservable).toBe(29);
    const ops = tx.changes.get(running)!;
    // Created pending and released in the same command: the pending count does not move.
    expect(writesAt(ops, '/workOrderCounts/pending')).toBe(0);
    expect(writesAt(ops, '/workOrderCounts/queued')).toBe(1);
    expect(writesAt(ops, '/workOrders/o1/state')).toBe(1);
    expect(applyPatch(before, compactOps(ops, { fold: true }))).toEqual(after);
  });
});
