import { describe, expect, it } from 'vitest';
import { CreateWorkOrderInput, CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { domain } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

/** Creates and starts a workflow; returns its id. */
function startWorkflow(d: Domain): string {
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  return workflowId;
}

/** Accepts and completes the current attempt of an order as its agent. */
function runToCompletion(d: Domain, workflowId: string, workOrderId: string): void {
  const attempt = d.state.workflows.get(workflowId)!.workOrders[workOrderId]!.attempt!;
  const ref = { workflowId, workOrderId, attemptToken: attempt.token };
  d.run('offer.answer', { ...ref, accept: true }, asAgent(attempt.agentId));
  d.run('task.complete', ref, asAgent(attempt.agentId));
}

// The index is runtime state that lives as long as the hub: every entry keyed by an id that comes
// and goes must go with it. These look at its sizes, since what they check is a cost.
describe('the scheduler index holds only what is in flight (domain)', () => {
  it('keeps no entry of an agent or a workflow once their attempts have ended', () => {
    const d = domain();
    d.register('worker');
    for (let i = 0; i < 50; i++) {
      const workflowId = startWorkflow(d);
      d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't' }));
      runToCompletion(d, workflowId, 'job');
    }
    const work = d.state.work;
    expect(d.state.agents!.worker!.stats.completed).toBe(50);
    expect({ active: work.active.size, leases: work.leases.size, byAgent: work.byAgent.size, workflowAgents: work.workflowAgents.size }).toEqual({
      active: 0,
      leases: 0,
      byAgent: 0,
      workflowAgents: 0,
    });
  });

  it('drops a bucket with the last queued order in it: orders nobody could take leave nothing behind when they end', () => {
    const d = domain();
    const work = d.state.work;
    for (let i = 0; i < 50; i++) {
      const workflowId = startWorkflow(d);
      const orders = ['first', 'second'].map((id) => ({ id, taskType: 't', requirements: [`gpu-${i}`] }));
      d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders }));
      d.run('workOrder.cancel', { workflowId, workOrderId: 'first' });
      // One of its orders is still queued: the bucket stays.
      expect(work.buckets.size).toBe(1);
      d.run('workflow.cancel', { workflowId });
      expect(work.buckets.size).toBe(0);
    }
    expect({ queued: work.queued.size, readySince: work.readySince.size }).toEqual({ queued: 0, readySince: 0 });
  });
});
