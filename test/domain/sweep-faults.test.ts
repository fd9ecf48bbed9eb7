import { describe, expect, it, vi } from 'vitest';
import { WorkIndex } from '../../server/domain/work/work-index.ts';
import { FAULT_RETRY_MS } from '../../server/domain/machinery/fault-backoff.ts';
import { versionOf } from '../../server/domain/machinery/state.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { breakErrorField, mendErrorField } from '../helpers/broken-order.ts';
import { domain } from '../helpers/domain.ts';

const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });
const failures = (effects: Effect[]) => effects.filter((effect) => effect.type === 'timer.failed');

/** Two workflows, each with one order running on agent `w` under a 1 s lease; the order of `bad` cannot have its error written. */
function twoRunning() {
  const d = domain();
  const workflows: Record<string, string> = {};
  d.register('w', { taskTypes: ['t'], maxConcurrentTasks: 2 });
  for (const name of ['good', 'bad']) {
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: name, userQuery: name })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', timeouts: { leaseMs: 1_000 }, maxAttempts: 3 }));
    const order = d.state.workflows.get(workflowId)!.workOrders.job!;
    d.run('task.progress', { workflowId, workOrderId: 'job', attemptToken: order.attempt!.token, progress: 10 }, asAgent('w'));
    workflows[name] = workflowId;
  }
  const order = (name: string) => d.state.workflows.get(workflows[name]!)!.workOrders.job!;
  breakErrorField(order('bad'));
  return { d, order };
}

describe('a timer of the sweep whose change throws', () => {
  it('is undone alone: the other timers of the same sweep run, and the broken order, its document and the index stay as they were', () => {
    const { d, order } = twoRunning();
    const badBefore = JSON.parse(JSON.stringify(order('bad')));
    const badVersion = versionOf(d.state, 'bad');
    const badToken = order('bad').attempt!.token;
    d.advance(1_000);

    const { reply, tx } = d.run('hub.sweep', {});

    expect(reply.lapsedLeases).toBe(1);
    expect(order('good')).toMatchObject({ state: 'queued', attempts: 1, error: 'lease of 1000 ms expired without a heartbeat' });
    expect(order('bad')).toEqual(badBefore);
    expect(versionOf(d.state, 'bad')).toBe(badVersion);
    expect(tx.changes.has('bad')).toBe(false);
    expect(tx.changes.has('good')).toBe(true);
    // The failed change's own notices went with it; the operator is told of the failure instead.
    expect(tx.effects.filter((effect) => effect.type === 'attempt.failed').map((effect) => (effect as { workflowId: string }).workflowId)).toEqual(['good']);
    expect(failures(tx.effects)).toEqual([{ type: 'timer.failed', timer: `lease:${badToken}`, error: expect.any(TypeError), failures: 1, retryInMs: FAULT_RETRY_MS }]);
    // The index agrees with the documents: the broken attempt is still held, the good one's slot is free.
    expect(d.state.work.active.has(badToken)).toBe(true);
    expect([...(d.state.work.byAgent.get('w') ?? [])]).toEqual([badToken]);
  });

  it('is put off with a growing wait, and runs once what broke it is mended', () => {
    const { d, order } = twoRunning();
    d.advance(1_000);
    d.run('hub.sweep', {});

    // Within its wait, later sweeps leave it alone: no failure to log at every sweep.
    d.advance(FAULT_RETRY_MS - 1);
    expect(failures(d.run('hub.sweep', {}).tx.effects)).toEqual([]);
    d.advance(1);
    expect(failures(d.run('hub.sweep', {}).tx.effects)).toMatchObject([{ failures: 2, retryInMs: 2 * FAULT_RETRY_MS }]);

    // Mended, it runs at its next turn.
    mendErrorField(order('bad'));
    d.advance(2 * FAULT_RETRY_MS);
    const { reply, tx } = d.run('hub.sweep', {});
    expect(reply.lapsedLeases).toBe(1);
    expect(failures(tx.effects)).toEqual([]);
    expect(order('bad')).toMatchObject({ state: 'queued', attempts: 1 });
    expect(d.state.work.sweepFaults.size).toBe(0);
  });

  it('a timeout put off is kept: it fires once it can', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'late', taskType: 'nobody', timeouts: { overallMs: 1_000 } }));
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'stuck', taskType: 'nobody', timeouts: { overallMs: 1_000 } }));
    const order = (id: string) => d.state.workflows.get(workflowId)!.workOrders[id]!;
    breakErrorField(order('stuck'));
    d.advance(1_000);

    const first = d.run('hub.sweep', {});
    expect(first.reply.timedOut).toBe(1);
    expect(order('late').state).toBe('failed');
    expect(order('stuck').state).toBe('queued');
    expect(failures(first.tx.effects)).toMatchObject([{ timer: `timeout:${workflowId}\u0000stuck`, failures: 1 }]);

    mendErrorField(order('stuck'));
    d.advance(FAULT_RETRY_MS / 2);
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(0);
    d.advance(FAULT_RETRY_MS / 2);
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(1);
    expect(order('stuck')).toMatchObject({ state: 'failed', error: 'overall timeout of 1000 ms exceeded' });
  });

  it('is tried again after its wait, not after a whole new lease: undone, the attempt keeps the lease that lapsed', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', timeouts: { leaseMs: 60_000 }, maxAttempts: 3 }));
    const order = () => d.state.workflows.get(workflowId)!.workOrders.job!;
    const token = order().attempt!.token;
    d.run('task.progress', { workflowId, workOrderId: 'job', attemptToken: token, progress: 10 }, asAgent('w'));
    const lease = d.state.work.leases.get(token);
    breakErrorField(order());
    d.advance(60_000);

    expect(failures(d.run('hub.sweep', {}).tx.effects)).toMatchObject([{ timer: `lease:${token}`, failures: 1 }]);
    expect(d.state.work.leases.get(token)).toBe(lease);
    mendErrorField(order());
    d.advance(FAULT_RETRY_MS);
    expect(d.run('hub.sweep', {}).reply.lapsedLeases).toBe(1);
    expect(order().state).toBe('queued');
  });

  it("undone after its order's other timers left with it, keeps them as they ran: a backoff ends when due on the monotonic clock, though the wall clock stepped", () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', timeouts: { overallMs: 1_000 }, maxAttempts: 3 }));
    const order = () => d.state.workflows.get(workflowId)!.workOrders.job!;
    const ref = { workflowId, workOrderId: 'job', attemptToken: order().attempt!.token };
    d.run('offer.answer', { ...ref, accept: true }, asAgent('w'));
    d.advance(500);
    // Backing off for 1 s, beyond its overall timeout, which cannot end it.
    d.run('task.fail', { ...ref, error: 'boom', retryable: true }, asAgent('w'));
    const notBefore = order().notBefore!;
    breakErrorField(order());
    d.advance(500);
    d.stepWallClock(400);

    expect(failures(d.run('hub.sweep', {}).tx.effects)).toMatchObject([{ timer: `timeout:${workflowId}\u0000job`, failures: 1 }]);
    // By the wall clock its backoff ends in 100 ms; by the monotonic one it runs on, in 500 ms.
    d.advance(100);
    d.run('hub.sweep', {});
    expect(order()).toMatchObject({ state: 'queued', notBefore });
    d.advance(400);
    d.run('hub.sweep', {});
    expect(order()).toMatchObject({ state: 'offered', notBefore: null });
  });

  it('many failing in one sweep derive the index anew once, not once each', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    for (let i = 0; i < 50; i++) d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: `o${i}`, taskType: 'nobody', timeouts: { overallMs: 1_000 } }));
    for (const order of Object.values(d.state.workflows.get(workflowId)!.workOrders)) breakErrorField(order);
    d.advance(1_000);
    const rebuild = vi.spyOn(WorkIndex.prototype, 'rebuild');
    try {
      expect(failures(d.run('hub.sweep', {}).tx.effects)).toHaveLength(50);
      expect(rebuild).toHaveBeenCalledTimes(1);
    } finally {
      rebuild.mockRestore();
    }
  });

  it('leaves an offer carried in a report reply carried (its silence is not held against the agent, and a drain gives it back)', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'a', taskType: 't' }));
    const order = (id: string) => d.state.workflows.get(workflowId)!.workOrders[id]!;
    const tokenA = order('a').attempt!.token;
    d.run('task.progress', { workflowId, workOrderId: 'a', attemptToken: tokenA, progress: 10 }, asAgent('w'));
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'b', taskType: 't', timeouts: { acceptMs: 60_000 } }));
    expect((d.run('task.complete', { workflowId, workOrderId: 'a', attemptToken: tokenA, next: true } as never, asAgent('w')).reply as { next?: unknown[] }).next).toHaveLength(1);
    const tokenB = order('b').attempt!.token;
    // An unrelated order, of another workflow, whose overall timeout throws when it fires.
    const other = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'other', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId: other });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId: other, id: 'x', taskType: 'nobody', timeouts: { overallMs: 1_000 } }));
    breakErrorField(d.state.workflows.get(other)!.workOrders.x!);
    d.advance(1_000);

    expect(failures(d.run('hub.sweep', {}).tx.effects)).toHaveLength(1);
    expect(d.state.work.active.get(tokenB)?.carried).toBe(true);
    d.run('agent.status', { status: 'draining' } as never, asAgent('w'));
    expect(order('b')).toMatchObject({ state: 'queued', attempt: null });
  });
});
