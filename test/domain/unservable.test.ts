import { describe, expect, it } from 'vitest';
import { CreateWorkOrderInput, CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { workflowSummary } from '../../server/domain/machinery/queries.ts';
import { stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { copyJson } from '../../server/domain/machinery/transaction.ts';
import { workflowView } from '../../server/domain/workflows/views.ts';
import { domain, SETTINGS } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });
const NO_GPU_AGENT = { reason: 'no_capable_agent', taskType: 'gpu-render' };

/** Creates and starts a workflow; returns its id. */
function startWorkflow(d: Domain): string {
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'render' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  return workflowId;
}

function order(d: Domain, workflowId: string, workOrderId: string) {
  return d.state.workflows.get(workflowId)!.workOrders[workOrderId]!;
}

/** The workflow's count of unservable orders, as its document, its summary and its summary view say it. */
function counts(d: Domain, workflowId: string) {
  const view = workflowView(d.state, workflowId, { kind: 'summary' });
  return [d.state.workflows.get(workflowId)!.unservable, workflowSummary(d.state, workflowId, 0).unservable, 'unservable' in view ? view.unservable : -1];
}

/** Disconnects an agent and runs the sweep once its grace period is over. */
function takeOffline(d: Domain, agentId: string): void {
  d.run('agent.disconnect', { agentId });
  d.advance(SETTINGS.graceMs);
  expect(d.run('hub.sweep', {}).reply.offline).toBe(1);
}

describe('work that no agent can take is marked (domain)', () => {
  it('marks an order of a task type no agent declares, counts it in the summary, and clears it when an agent of that type registers and is offered it', () => {
    const d = domain();
    d.register('cpu-worker', { taskTypes: ['parse'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'frame-1', taskType: 'gpu-render' }));
    expect(order(d, workflowId, 'frame-1')).toMatchObject({ state: 'queued', waiting: NO_GPU_AGENT });
    expect(counts(d, workflowId)).toEqual([1, 1, 1]);

    d.register('gpu-worker', { taskTypes: ['gpu-render'] });
    expect(order(d, workflowId, 'frame-1')).toMatchObject({ state: 'offered', waiting: null, attempt: { agentId: 'gpu-worker' } });
    expect(counts(d, workflowId)).toEqual([0, 0, 0]);
  });

  it('keeps the mark off while the last capable agent is within its grace period, and sets it again once that agent is offline', () => {
    const d = domain();
    d.register('gpu-worker', { taskTypes: ['gpu-render'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'running', taskType: 'gpu-render' }, { id: 'next', taskType: 'gpu-render' }] }));
    const attempt = order(d, workflowId, 'running').attempt!;
    d.run('offer.answer', { workflowId, workOrderId: 'running', attemptToken: attempt.token, accept: true }, asAgent('gpu-worker'));
    // The agent is busy, not gone: the next order waits for it unmarked.
    expect(order(d, workflowId, 'next')).toMatchObject({ state: 'queued', waiting: null });

    d.run('agent.disconnect', { agentId: 'gpu-worker' });
    d.advance(SETTINGS.graceMs - 1);
    d.run('hub.sweep', {});
    expect(order(d, workflowId, 'next').waiting).toBeNull();

    d.advance(1);
    expect(d.run('hub.sweep', {}).reply.offline).toBe(1);
    expect(order(d, workflowId, 'next').waiting).toEqual(NO_GPU_AGENT);
    // The order it was running goes back to the queue after a backoff, and is marked once that ends.
    expect(order(d, workflowId, 'running')).toMatchObject({ state: 'queued', waiting: null });
    d.advance(SETTINGS.backoffBaseMs);
    d.run('hub.sweep', {});
    expect(order(d, workflowId, 'running').waiting).toEqual(NO_GPU_AGENT);
    expect(counts(d, workflowId)).toEqual([2, 2, 2]);

    // Back: both are offered in turn, unmarked.
    d.register('gpu-worker', { taskTypes: ['gpu-render'] });
    expect(counts(d, workflowId)).toEqual([0, 0, 0]);
    expect(Object.values(d.state.workflows.get(workflowId)!.workOrders).map((o) => o.state).sort()).toEqual(['offered', 'queued']);
  });

  it('says which requirements no agent of the task type holds all of, and clears when one that holds them registers', () => {
    const d = domain();
    d.register('small-gpu', { taskTypes: ['gpu-render'], capabilities: ['cuda'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'big-frame', taskType: 'gpu-render', requirements: ['vram-80g', 'cuda'] }));
    expect(order(d, workflowId, 'big-frame').waiting).toEqual({ reason: 'no_capable_agent', missing: ['cuda', 'vram-80g'] });

    // An agent of another type holding them does not help; one of any type (`*`) that holds them does.
    d.register('other', { taskTypes: ['parse'], capabilities: ['cuda', 'vram-80g'] });
    expect(order(d, workflowId, 'big-frame').waiting).not.toBeNull();
    d.register('big-gpu', { taskTypes: ['*'], capabilities: ['cuda', 'vram-80g'] });
    expect(order(d, workflowId, 'big-frame')).toMatchObject({ state: 'offered', waiting: null });
  });

  it('tells "no agent of the type" from "none holds the requirements" as agents of the type come and go', () => {
    const d = domain();
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'frame', taskType: 'gpu-render', requirements: ['cuda'] }));
    expect(order(d, workflowId, 'frame').waiting).toEqual(NO_GPU_AGENT);
    d.register('no-cuda', { taskTypes: ['gpu-render'] });
    expect(order(d, workflowId, 'frame').waiting).toEqual({ reason: 'no_capable_agent', missing: ['cuda'] });
    takeOffline(d, 'no-cuda');
    expect(order(d, workflowId, 'frame').waiting).toEqual(NO_GPU_AGENT);
    expect(counts(d, workflowId)).toEqual([1, 1, 1]);
  });

  it('marks the orders of a draining agent only it could take, and clears them when it is active again', () => {
    const d = domain();
    d.register('gpu-worker', { taskTypes: ['gpu-render'], maxConcurrentTasks: 1 });
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'a', taskType: 'gpu-render' }, { id: 'b', taskType: 'gpu-render' }] }));
    expect(order(d, workflowId, 'b').waiting).toBeNull();
    d.run('agent.status', { status: 'draining' }, asAgent('gpu-worker'));
    expect(order(d, workflowId, 'b').waiting).toEqual(NO_GPU_AGENT);
    d.run('agent.status', { status: 'active' }, asAgent('gpu-worker'));
    expect(order(d, workflowId, 'b').waiting).toBeNull();
  });

  it('marks the orders of a task type an agent stops declaring when it registers again', () => {
    const d = domain();
    d.register('worker', { taskTypes: ['gpu-render', 'parse'], maxConcurrentTasks: 1 });
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'a', taskType: 'parse' }, { id: 'b', taskType: 'gpu-render' }] }));
    d.register('worker', { taskTypes: ['parse'], maxConcurrentTasks: 1 });
    expect(order(d, workflowId, 'b').waiting).toEqual(NO_GPU_AGENT);
  });

  it('clears the mark and the count of an order that leaves the queue unserved', () => {
    const d = domain();
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'a', taskType: 'gpu-render' }, { id: 'b', taskType: 'gpu-render' }] }));
    expect(counts(d, workflowId)).toEqual([2, 2, 2]);
    d.run('workOrder.cancel', { workflowId, workOrderId: 'a' });
    expect(order(d, workflowId, 'a')).toMatchObject({ state: 'cancelled', waiting: null });
    expect(counts(d, workflowId)).toEqual([1, 1, 1]);
    d.run('workflow.cancel', { workflowId });
    expect(counts(d, workflowId)).toEqual([0, 0, 0]);
  });

  it('leaves the orders alone when agents register, reconnect, heartbeat or come and go without changing who can take them', () => {
    const d = domain();
    d.register('gpu-worker', { taskTypes: ['gpu-render'] });
    const workflowId = startWorkflow(d);
    const orders = Array.from({ length: 10_000 }, (_, i) => ({ id: `f${i}`, taskType: 'blender' }));
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: orders.slice(0, 1000) }));
    for (let i = 1000; i < orders.length; i += 1000) d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: orders.slice(i, i + 1000) }));
    expect(d.state.workflows.get(workflowId)!.unservable).toBe(10_000);
    const touched = (run: () => { tx: { changes: Map<string, unknown[]> } }) => run().tx.changes.has(workflowId);
    expect(touched(() => d.register('cpu-worker', { taskTypes: ['parse'] }))).toBe(false);
    expect(touched(() => d.run('agent.disconnect', { agentId: 'gpu-worker' }))).toBe(false);
    expect(touched(() => d.register('gpu-worker', { taskTypes: ['gpu-render'] }))).toBe(false);
    expect(touched(() => d.run('agent.heartbeat', { attemptTokens: [] }, asAgent('gpu-worker')))).toBe(false);
    expect(touched(() => d.run('hub.sweep', {}))).toBe(false);

    // The first agent of the type: every order of it is offered or unmarked, in that one command.
    const { tx } = d.register('blender-farm', { taskTypes: ['blender'], maxConcurrentTasks: 10 });
    expect(d.state.workflows.get(workflowId)!.unservable).toBe(0);
    expect(Object.values(d.state.workflows.get(workflowId)!.workOrders).filter((o) => o.waiting !== null)).toEqual([]);
    expect(tx.changes.get(workflowId)!.length).toBeLessThan(10_000 + 200);
  });

  it('settles at start-up the marks of orders whose backoff ended while the hub was down, and of documents written before marks were kept', () => {
    const d = domain();
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'a', taskType: 'gpu-render' }, { id: 'b', taskType: 'gpu-render' }] }));
    const docs = new Map(storedDocs(d.state).map(([key, stored]) => [key, copyJson(stored)]));
    const workflow = docs.get(workflowId)!.doc as { workOrders: Record<string, Record<string, unknown>>; unservable?: number };
    // As written before markers were kept.
    for (const id of ['a', 'b']) delete workflow.workOrders[id]!.waiting;
    delete workflow.unservable;

    const restarted = domain(stateFromDocs(docs, 5_000));
    expect(restarted.state.work.capable.unsettled).toHaveLength(2);
    restarted.run('hub.recover', {});
    expect(order(restarted, workflowId, 'a').waiting).toEqual(NO_GPU_AGENT);
    expect(counts(restarted, workflowId)).toEqual([2, 2, 2]);
    expect(restarted.state.work.capable.unsettled).toHaveLength(0);
  });

  it('keeps no need once the orders that made it have left the queue', () => {
    const d = domain();
    for (let i = 0; i < 20; i++) {
      const workflowId = startWorkflow(d);
      d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'x', taskType: `type-${i}`, requirements: [`r-${i}`] }));
      d.run('workflow.cancel', { workflowId });
    }
    expect(d.state.work.capable.size).toBe(0);
  });

  it('marks an order every agent that takes work and can do it declined, counting an agent of `*` and its task type once, and keeps the mark over a restart', () => {
    const d = domain();
    d.register('no-cuda', { taskTypes: ['gpu-render'], maxConcurrentTasks: 1 });
    d.register('cuda', { taskTypes: ['gpu-render'], capabilities: ['cuda'] });
    d.register('any', { taskTypes: ['*', 'gpu-render'], capabilities: ['cuda'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'frame', taskType: 'gpu-render', requirements: ['cuda'] }));
    for (let declines = 0; declines < 2; declines++) {
      expect(order(d, workflowId, 'frame').waiting).toBeNull();
      const attempt = order(d, workflowId, 'frame').attempt!;
      d.run('offer.answer', { workflowId, workOrderId: 'frame', attemptToken: attempt.token, accept: false }, asAgent(attempt.agentId));
    }
    // `no-cuda` takes work, but not this work.
    expect(order(d, workflowId, 'frame')).toMatchObject({ state: 'queued', waiting: { reason: 'all_declined' } });
    expect(counts(d, workflowId)).toEqual([1, 1, 1]);

    const docs = new Map(storedDocs(d.state).map(([key, stored]) => [key, copyJson(stored)]));
    const restarted = domain(stateFromDocs(docs, 5_000));
    // Looked at again after the first command (its retryAt follows declinedRetryMs, which the index does not know), and kept.
    const marked = order(d, workflowId, 'frame').waiting;
    const version = restarted.state.versions.get(workflowId);
    restarted.run('hub.sweep', {});
    expect(restarted.state.work.capable.unsettled).toHaveLength(0);
    expect(order(restarted, workflowId, 'frame').waiting).toEqual(marked);
    expect(restarted.state.versions.get(workflowId)).toBe(version);
    restarted.register('fresh', { taskTypes: ['gpu-render'], capabilities: ['cuda'] });
    expect(order(restarted, workflowId, 'frame')).toMatchObject({ state: 'offered', waiting: null, attempt: { agentId: 'fresh' } });
    expect(counts(restarted, workflowId)).toEqual([0, 0, 0]);
  });
});
