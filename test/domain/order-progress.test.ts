import { describe, expect, it } from 'vitest';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { progressSource } from '../../server/domain/workflows/order-progress.ts';
import { domain } from '../helpers/domain.ts';

/** A stages object that counts how often its keys are listed. */
function watched<T extends object>(stages: T): { stages: T; listings: () => number } {
  let listings = 0;
  const proxy = new Proxy(stages, {
    ownKeys(target) {
      listings++;
      return Reflect.ownKeys(target);
    },
  });
  return { stages: proxy, listings: () => listings };
}

describe('where progress comes from, in a workflow with many stages', () => {
  it('is known without listing every stage at each order created or ended', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    for (let i = 0; i < 500; i++) d.run('workflow.progress', { workflowId, stage: `s${i}`, percentage: 10 });
    const workflow = d.state.workflows.get(workflowId)!;
    const probe = watched(workflow.stages);
    workflow.stages = probe.stages;
    for (let i = 0; i < 50; i++) {
      d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: `o${i}`, taskType: 't' }));
      d.run('workOrder.cancel', { workflowId, workOrderId: `o${i}` });
    }
    expect(workflow.workOrderCounts.cancelled).toBe(50);
    expect(workflow.progress).toBe(10);
    expect(probe.listings()).toBeLessThanOrEqual(1);
  });

  it('looks again when the stage it knew is gone (a rolled-back first stage)', () => {
    const counts = { pending: 1, blocked: 0, queued: 0, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    const stages: Record<string, never> = {};
    Object.assign(stages, { a: {} });
    expect(progressSource({ stages, workOrderCounts: counts })).toBe('stages');
    delete (stages as Record<string, unknown>)['a'];
    expect(progressSource({ stages, workOrderCounts: counts })).toBe('orders');
    Object.assign(stages, { b: {} });
    expect(progressSource({ stages, workOrderCounts: counts })).toBe('stages');
  });
});
