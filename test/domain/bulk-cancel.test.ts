import { describe, expect, it } from 'vitest';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { applyPatch, compactOps, type PatchOp } from '../../shared/patch.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { FINAL_STATES, finishOrder } from '../../server/domain/work/work-orders.ts';
import { changeStatus } from '../../server/domain/workflows/workflows.ts';
import { SETTINGS, domain } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

/**
 * A workflow with orders in every state a cancel meets: queued and marked unservable (nobody
 * takes its task type), queued and servable, offered, running, blocked, and finished ones.
 */
function scenario(start: boolean): { d: Domain; workflowId: string } {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
  if (start) d.run('workflow.start', { workflowId });
  d.register('busy', { taskTypes: ['work'], maxConcurrentTasks: 2 });
  const orders = [
    ...Array.from({ length: 20 }, (_, i) => ({ id: `nobody-${i}`, taskType: 'nobody' })),
    ...Array.from({ length: 5 }, (_, i) => ({ id: `work-${i}`, taskType: 'work' })),
    { id: 'blocked', taskType: 'work', dependencies: ['work-4'] },
  ];
  d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders }));
  if (start) {
    const workflow = d.state.workflows.get(workflowId)!;
    const offered = Object.values(workflow.workOrders).filter((order) => order.state === 'offered');
    const attempt = offered[0]!.attempt!;
    d.run('offer.answer', { workflowId, workOrderId: offered[0]!.id, attemptToken: attempt.token, accept: true }, asAgent('busy'));
    d.run('workOrder.cancel', { workflowId, workOrderId: 'nobody-3', reason: 'early' });
  }
  return { d, workflowId };
}

/** The previous workflow.cancel: every order finished on its own, each writing its workflow's counts. */
function cancelOneByOne(d: Domain, workflowId: string): Transaction<Effect> {
  const tx = new Transaction<Effect>(d.state);
  const t = { state: d.state, tx, ctx: { now: 1_000, monotonicNow: 1_000, newId: (prefix: string) => `${prefix}_x`, settings: SETTINGS } };
  changeStatus(t, workflowId, 'cancel', 'stop');
  const workflow = d.state.workflows.get(workflowId)!;
  for (const order of Object.values(workflow.workOrders)) if (!FINAL_STATES.has(order.state)) finishOrder(t, order, 'cancelled', { error: 'workflow cancelled' });
  return tx;
}

const byPath = (ops: PatchOp[]) => [...ops].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

describe('workflow.cancel of many orders', () => {
  for (const start of [true, false]) {
    it(`ends as finishing each order on its own did, with the workflow's counts written once (${start ? 'running' : 'pending'} workflow)`, () => {
      const bulk = scenario(start);
      const single = scenario(start);
      // Through JSON: the state shares one frozen empty array among fields, which structuredClone would keep shared.
      const before = JSON.parse(JSON.stringify(bulk.d.state.workflows.get(bulk.workflowId)));
      if (start) expect(before.unservable).toBeGreaterThan(10);
      const { tx } = bulk.d.run('workflow.cancel', { workflowId: bulk.workflowId, reason: 'stop' });
      const reference = cancelOneByOne(single.d, single.workflowId);

      const after = bulk.d.state.workflows.get(bulk.workflowId)!;
      expect(after).toEqual(single.d.state.workflows.get(single.workflowId));
      expect(bulk.d.state.agents).toEqual(single.d.state.agents);
      expect(tx.effects).toEqual(reference.effects);
      expect(after.workOrderCounts.cancelled).toBeGreaterThan(20);
      expect(after.unservable).toBe(0);
      // The journal's record and the monitors' patches: the same ops once compacted, the same result applied.
      const ops = tx.changes.get(bulk.workflowId)!;
      const referenceOps = reference.changes.get(single.workflowId)!;
      expect(byPath(compactOps(ops))).toEqual(byPath(compactOps(referenceOps)));
      expect(applyPatch(before, compactOps(ops, { fold: true }))).toEqual(after);
      // Written once, not once per order.
      for (const path of ['/workOrderCounts/cancelled', '/unservable', '/updatedAt']) expect(ops.filter((op) => op.path === path).length).toBeLessThanOrEqual(path === '/updatedAt' ? 2 : 1);
    });
  }
});
