import { describe, expect, it } from 'vitest';
import { CreateWorkOrderInput, CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { listWorkOrders } from '../../server/domain/machinery/queries.ts';
import { orderKey } from '../../server/domain/work/work-index.ts';
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
    expect({ active: work.active.size, leases: work.leases.size, byAgent: work.byAgent.size, workflowAgents: work.workflowAgents.size, places: work.places.size }).toEqual({
      active: 0,
      leases: 0,
      byAgent: 0,
      workflowAgents: 0,
      places: 0,
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
    expect({ queued: work.queued.size, readySince: work.readySince.size, places: work.places.size }).toEqual({ queued: 0, readySince: 0, places: 0 });
  });

  it('holds the timers of the orders still unfinished, not of the thousands that ended before theirs were due, and those still end their orders', () => {
    const d = domain();
    const work = d.state.work;
    d.register('worker', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    const HOUR = { overallMs: 3_600_000 };
    const waiting = Array.from({ length: 10 }, (_, i) => ({ id: `waiting-${i}`, taskType: 'nobody-does-this', timeouts: HOUR }));
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: waiting }));
    for (let i = 0; i < 1_500; i++) {
      const workOrderId = `o${i}`;
      d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: workOrderId, taskType: 't', timeouts: HOUR }));
      const ref = { workflowId, workOrderId, attemptToken: d.state.workflows.get(workflowId)!.workOrders[workOrderId]!.attempt!.token };
      if (i % 3 === 0) runToCompletion(d, workflowId, workOrderId);
      else {
        // A retry's backoff, or declines to forget (the only agent declined it), then cancelled before either is due.
        if (i % 3 === 1) {
          d.run('offer.answer', { ...ref, accept: true }, asAgent('worker'));
          d.run('task.fail', { ...ref, error: 'boom', retryable: true }, asAgent('worker'));
        } else d.run('offer.answer', { ...ref, accept: false }, asAgent('worker'));
        d.run('workOrder.cancel', { workflowId, workOrderId });
      }
    }
    const counts = d.state.workflows.get(workflowId)!.workOrderCounts;
    expect({ completed: counts.completed, cancelled: counts.cancelled, queued: counts.queued }).toEqual({ completed: 500, cancelled: 1_000, queued: 10 });
    // 1,500 timeouts, 500 backoffs and 500 declines ended: what is held follows the 10 orders still unfinished.
    expect({ backoffs: work.delayed.size, timeouts: work.deadlines.size, declines: work.declineExpiries.size }).toEqual({ backoffs: 0, timeouts: 10, declines: 0 });

    d.advance(3_600_000);
    expect(d.run('hub.sweep', {}).reply).toMatchObject({ timedOut: 10, more: false });
    const orders = d.state.workflows.get(workflowId)!.workOrders;
    expect(waiting.map(({ id }) => orders[id]!.state)).toEqual(waiting.map(() => 'failed'));
    expect(d.state.workflows.get(workflowId)!.workOrderCounts).toMatchObject({ completed: 500, cancelled: 1_000, failed: 10 });
    expect({ timers: work.delayed.size + work.deadlines.size + work.declineExpiries.size }).toEqual({ timers: 0 });
  });

  it('keeps the timers of orders whose end was undone as they ran: the rebuild after a rollback finds those taken out meanwhile, though the wall clock stepped', () => {
    const d = domain();
    const work = d.state.work;
    const workflowId = startWorkflow(d);
    const orders = Array.from({ length: 200 }, (_, i) => ({ id: `o${i}`, taskType: 'nobody-does-this', timeouts: { overallMs: 60_000 } }));
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders }));
    const queuedAt = d.state.workflows.get(workflowId)!.workOrders.o0!.firstQueuedAt!;
    const { tx } = d.run('workflow.cancel', { workflowId });
    expect(work.deadlines.size).toBe(0);
    // Its write failed: undone, and the index rebuilt, with the wall clock 30 s ahead of the monotonic one since.
    tx.rollback();
    work.rebuild(d.state.workflows.values(), d.state.agents, queuedAt + 30_000, queuedAt);
    expect({ held: work.deadlines.size, live: work.deadlines.live }).toEqual({ held: 200, live: 200 });
    d.advance(30_000);
    expect(d.run('hub.sweep', {}).reply).toMatchObject({ timedOut: 0 });
    d.advance(30_000);
    expect(d.run('hub.sweep', {}).reply).toMatchObject({ timedOut: 200 });
  });

  it('keeps the backoff and the forgetting of declines of orders whose end was undone as they ran, though the wall clock stepped', () => {
    const d = domain();
    const work = d.state.work;
    d.register('worker', { taskTypes: ['t', 'u'] });
    const workflowId = startWorkflow(d);
    const order = (id: string) => d.state.workflows.get(workflowId)!.workOrders[id]!;
    const refOf = (id: string) => ({ workflowId, workOrderId: id, attemptToken: order(id).attempt!.token });
    // `declined`: its only able agent declined it, forgotten in 60 s (declinedRetryMs); `backing`: backing off for 1 s after a failure.
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'declined', taskType: 'u' }));
    d.run('offer.answer', { ...refOf('declined'), accept: false }, asAgent('worker'));
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'backing', taskType: 't', maxAttempts: 3 }));
    d.run('offer.answer', { ...refOf('backing'), accept: true }, asAgent('worker'));
    d.run('task.fail', { ...refOf('backing'), error: 'boom', retryable: true }, asAgent('worker'));
    expect({ declined: order('declined').waiting?.reason, backing: order('backing').notBefore }).toEqual({ declined: 'all_declined', backing: d.clocks().now + 1_000 });
    const { tx } = d.run('workflow.cancel', { workflowId });
    expect({ backoffs: work.delayed.size, declines: work.declineExpiries.size }).toEqual({ backoffs: 0, declines: 0 });
    // Its write failed: undone, and the index rebuilt, with the wall clock 30 s ahead of the monotonic one since.
    tx.rollback();
    d.stepWallClock(30_000);
    const { now, monotonicNow } = d.clocks();
    work.rebuild(d.state.workflows.values(), d.state.agents, now, monotonicNow);
    // By the wall clock its backoff is over; by the monotonic one it runs on, 1 s is left.
    expect(work.queued.has(orderKey(workflowId, 'backing'))).toBe(false);
    d.advance(1_000);
    d.run('hub.sweep', {});
    // Offered again at once: its agent is free.
    expect({ state: order('backing').state, notBefore: order('backing').notBefore }).toEqual({ state: 'offered', notBefore: null });
    d.advance(30_000);
    expect(d.run('hub.sweep', {}).reply).toMatchObject({ declinesForgotten: 0 });
    d.advance(29_000);
    expect(d.run('hub.sweep', {}).reply).toMatchObject({ declinesForgotten: 1 });
  });
});

describe('forgetting a workflow (domain)', () => {
  /** A started workflow with an order nobody can take, one running on `worker`, and its order list kept. */
  function busyWorkflow(d: Domain) {
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'stuck', taskType: 't', requirements: ['nobody-has-this'] }, { id: 'busy', taskType: 't' }] }));
    const attempt = d.state.workflows.get(workflowId)!.workOrders.busy!.attempt!;
    d.run('offer.answer', { workflowId, workOrderId: 'busy', attemptToken: attempt.token, accept: true }, asAgent('worker'));
    listWorkOrders(d.state, { workflowId, limit: 10 });
    return { workflowId, list: d.state.work.orderLists.of(d.state.workflows.get(workflowId)!) };
  }

  it('drops every index entry of the workflow and none of another', () => {
    const d = domain();
    d.register('worker', { maxConcurrentTasks: 2 });
    const gone = busyWorkflow(d);
    const kept = busyWorkflow(d);
    const work = d.state.work;
    expect(work.buckets.size).toBe(2);
    expect(work.leases.size).toBe(2);

    work.forgetWorkflow(gone.workflowId);
    const ofWorkflow = (keys: Iterable<string>) => [...keys].map((key) => key.split('\u0000')[0]);
    expect({
      buckets: [...work.buckets.values()].map((bucket) => bucket.workflowId),
      queued: ofWorkflow(work.queued.keys()),
      readySince: ofWorkflow(work.readySince.keys()),
      active: [...work.active.values()].map((attempt) => attempt.workflowId),
      workflowAgents: [...work.workflowAgents.keys()],
      byAgent: [...work.byAgent.get('worker')!].map((token) => work.active.get(token)?.workflowId),
    }).toEqual({
      buckets: [kept.workflowId],
      queued: [kept.workflowId],
      readySince: [kept.workflowId],
      active: [kept.workflowId],
      workflowAgents: [kept.workflowId],
      byAgent: [kept.workflowId],
    });
    expect(work.leases.size).toBe(1);
    // The kept list is handed out again; the forgotten one (and the orders it holds) is not.
    expect(work.orderLists.of(d.state.workflows.get(kept.workflowId)!)).toBe(kept.list);
    expect(work.orderLists.of(d.state.workflows.get(gone.workflowId)!)).not.toBe(gone.list);
  });

  it('looks at none of the buckets of other workflows', () => {
    const d = domain();
    const others = Array.from({ length: 200 }, () => {
      const workflowId = startWorkflow(d);
      d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, taskType: 'nobody-does-this' }));
      return workflowId;
    });
    const gone = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId: gone, taskType: 'nobody-does-this' }));
    let looks = 0;
    for (const bucket of d.state.work.buckets.values()) {
      if (bucket.workflowId === gone) continue;
      const workflowId = bucket.workflowId;
      Object.defineProperty(bucket, 'workflowId', { get: () => (looks++, workflowId) });
    }
    d.state.work.forgetWorkflow(gone);
    expect(looks).toBe(0);
    expect([...d.state.work.buckets.values()].map((bucket) => bucket.key.split('\u0000')[0]).sort()).toEqual([...others].sort());
  });
});
