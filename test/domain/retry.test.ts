import { describe, expect, it } from 'vitest';
import { CreateWorkOrderInput, CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { copyJson } from '../../server/domain/machinery/transaction.ts';
import { domain, SETTINGS } from '../helpers/domain.ts';
import { codeOfCall } from '../helpers/errors.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

function startWorkflow(d: Domain): string {
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'retry' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  return workflowId;
}

const orderOf = (d: Domain, workflowId: string, id: string) => d.state.workflows.get(workflowId)!.workOrders[id]!;

/** Accepts the order's offer and fails the attempt (retryable). */
function failOnce(d: Domain, workflowId: string, id: string, retryable = true): void {
  const { token, agentId } = orderOf(d, workflowId, id).attempt!;
  const ref = { workflowId, workOrderId: id, attemptToken: token };
  d.run('offer.answer', { ...ref, accept: true }, asAgent(agentId));
  d.run('task.fail', { ...ref, error: 'disk full', retryable }, asAgent(agentId));
}

/** Lets a backoff run out and the sweep queue the order again. */
function waitOutBackoff(d: Domain): void {
  d.advance(SETTINGS.backoffMaxMs);
  d.run('hub.sweep', {});
}

/** The workflow's counts as it keeps them, and as its orders say they are. */
function counts(d: Domain, workflowId: string) {
  const workflow = d.state.workflows.get(workflowId)!;
  const recount: Record<string, number> = {};
  for (const state of Object.keys(workflow.workOrderCounts)) recount[state] = 0;
  let unservable = 0;
  for (const order of Object.values(workflow.workOrders)) {
    recount[order.state]!++;
    if (order.waiting) unservable++;
  }
  return { kept: { ...workflow.workOrderCounts, unservable: workflow.unservable ?? 0 }, recounted: { ...recount, unservable } };
}

describe('workOrder.retry (domain)', () => {
  it('puts an order that failed for good back in the queue with a fresh budget: attempt numbers go on, history is kept, and it fails again only after maxAttempts more', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', maxAttempts: 2, timeouts: { overallMs: 60_000 } }));
    failOnce(d, workflowId, 'job');
    waitOutBackoff(d);
    failOnce(d, workflowId, 'job');
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'failed', attempts: 2, error: 'failed after 2 attempt(s): disk full' });
    const progressBefore = d.state.workflows.get(workflowId)!.orderProgress;

    d.advance(120_000);
    const { reply } = d.run('workOrder.retry', { workflowId, workOrderId: 'job' });
    expect(reply.item).toMatchObject({ state: 'offered', attempts: 2, endedAt: null, retried: { at: d.state.workflows.get(workflowId)!.updatedAt, attempts: 2 }, attempt: { number: 3, agentId: 'w' } });
    expect(reply.item.history.map((run) => run.number)).toEqual([1, 2]);
    // It waits from the retry, as a new order does: aged from its first queueing, it would jump every priority.
    expect(reply.item.queuedAt).toBe(reply.item.retried!.at);
    expect(d.state.workflows.get(workflowId)!.orderProgress).not.toBe(progressBefore);
    expect(counts(d, workflowId).kept).toEqual(counts(d, workflowId).recounted);
    // Its overall timeout runs again from the retry: the old one ran out long ago.
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(0);

    failOnce(d, workflowId, 'job');
    expect(orderOf(d, workflowId, 'job').state).toBe('queued');
    waitOutBackoff(d);
    failOnce(d, workflowId, 'job');
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'failed', attempts: 4, error: 'failed after 2 attempt(s) since its retry: disk full' });
    expect(orderOf(d, workflowId, 'job').history.map((run) => run.number)).toEqual([1, 2, 3, 4]);
    expect(counts(d, workflowId).kept).toEqual(counts(d, workflowId).recounted);
  });

  it('gives a retried order its overall timeout again, from when it is queued', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', timeouts: { overallMs: 60_000, acceptMs: 600_000 } }));
    d.advance(60_000);
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(1);
    d.run('workOrder.retry', { workflowId, workOrderId: 'job' });
    d.advance(59_000);
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(0);
    expect(orderOf(d, workflowId, 'job').state).toBe('offered');
    d.advance(1_000);
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(1);
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'failed', error: 'overall timeout of 60000 ms exceeded' });
  });

  it('backs a retried order off from the base again, as after its first failure', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', maxAttempts: 3 }));
    for (let i = 0; i < 3; i++) {
      if (i > 0) waitOutBackoff(d);
      failOnce(d, workflowId, 'job');
    }
    expect(orderOf(d, workflowId, 'job').state).toBe('failed');
    d.run('workOrder.retry', { workflowId, workOrderId: 'job' });
    failOnce(d, workflowId, 'job');
    const order = orderOf(d, workflowId, 'job');
    expect(order).toMatchObject({ state: 'queued', attempts: 4 });
    expect(order.notBefore! - d.state.workflows.get(workflowId)!.updatedAt).toBe(SETTINGS.backoffBaseMs);
  });

  it('retries an order that failed as not retryable, forgetting its declines', () => {
    const d = domain();
    d.register('a', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't' }));
    const offer = orderOf(d, workflowId, 'job').attempt!;
    d.run('offer.answer', { workflowId, workOrderId: 'job', attemptToken: offer.token, accept: false }, asAgent('a'));
    d.register('b', { taskTypes: ['t'] });
    failOnce(d, workflowId, 'job', false);
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'failed', declinedBy: ['a'], error: 'failed (not retryable): disk full' });
    d.run('agent.update', { agentId: 'b', status: 'draining' });

    d.run('workOrder.retry', { workflowId, workOrderId: 'job' });
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'offered', declinedBy: [], attempt: { agentId: 'a', number: 2 } });
  });

  it('offers a queued order every agent declined to them again, and clears its all_declined mark and count', () => {
    const d = domain();
    d.register('gpu', { taskTypes: ['render'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'frame', taskType: 'render' }));
    const offer = orderOf(d, workflowId, 'frame').attempt!;
    // Silence past acceptMs counts as a decline.
    d.advance(10_000);
    d.run('hub.sweep', {});
    expect(orderOf(d, workflowId, 'frame')).toMatchObject({ state: 'queued', declinedBy: ['gpu'], waiting: { reason: 'all_declined' } });
    expect(counts(d, workflowId).kept.unservable).toBe(1);

    const { reply } = d.run('workOrder.retry', { workflowId, workOrderId: 'frame' });
    expect(reply.item).toMatchObject({ state: 'offered', declinedBy: [], waiting: null, attempt: { agentId: 'gpu', number: 1 } });
    expect(reply.item.attempt!.token).not.toBe(offer.token);
    expect(reply.item.retried).toBeUndefined();
    expect(counts(d, workflowId).kept).toEqual(counts(d, workflowId).recounted);
    expect(counts(d, workflowId).kept.unservable).toBe(0);
  });

  it('clears the declines of a queued order whose agent is busy, and leaves one nothing holds back unchanged', () => {
    const d = domain();
    d.register('gpu', { taskTypes: ['render'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'frame', taskType: 'render' }, { id: 'other', taskType: 'render' }] }));
    const offer = orderOf(d, workflowId, 'frame').attempt!;
    d.run('offer.answer', { workflowId, workOrderId: 'frame', attemptToken: offer.token, accept: false }, asAgent('gpu'));
    // The agent holds `other` now: `frame` waits for its slot once its declines are forgotten.
    expect(orderOf(d, workflowId, 'other').state).toBe('offered');
    d.run('workOrder.retry', { workflowId, workOrderId: 'frame' });
    expect(orderOf(d, workflowId, 'frame')).toMatchObject({ state: 'queued', declinedBy: [], waiting: null });
    const version = d.state.versions.get(workflowId);
    const { tx } = d.run('workOrder.retry', { workflowId, workOrderId: 'frame' });
    expect(d.state.versions.get(workflowId)).toBe(version);
    expect(tx.effects).toEqual([]);

    const token = orderOf(d, workflowId, 'other').attempt!.token;
    d.run('offer.answer', { workflowId, workOrderId: 'other', attemptToken: token, accept: true }, asAgent('gpu'));
    d.run('task.complete', { workflowId, workOrderId: 'other', attemptToken: token }, asAgent('gpu'));
    expect(orderOf(d, workflowId, 'frame')).toMatchObject({ state: 'offered', attempt: { agentId: 'gpu' } });
  });

  it('offers a queued order backing off before its next attempt now', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't' }));
    failOnce(d, workflowId, 'job');
    expect(orderOf(d, workflowId, 'job').notBefore).not.toBeNull();
    d.run('workOrder.retry', { workflowId, workOrderId: 'job' });
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'offered', notBefore: null, attempt: { number: 2 } });
    // The backoff's timer, due later, finds nothing to do.
    const token = orderOf(d, workflowId, 'job').attempt!.token;
    waitOutBackoff(d);
    expect(orderOf(d, workflowId, 'job').attempt?.token).not.toBe(token);
    expect(counts(d, workflowId).kept).toEqual(counts(d, workflowId).recounted);
  });

  it('leaves the timers of 1,001 backoffs cut short to lapse without holding back one due behind them: the sweep that met them says more are due, and the next ends it', () => {
    const d = domain();
    for (const agentId of ['v', 'w']) d.register(agentId, { taskTypes: ['t'], maxConcurrentTasks: 1_000 });
    const workflowId = startWorkflow(d);
    const ids = Array.from({ length: 1_001 }, (_, i) => `o${i}`);
    for (const batch of [ids.slice(0, 1_000), ids.slice(1_000)]) {
      d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: batch.map((id) => ({ id, taskType: 't', timeouts: { acceptMs: 600_000 } })) }));
    }
    for (const id of ids) failOnce(d, workflowId, id);
    // Offered again at once: their backoffs' timers stay in the queue until due (their orders go on), then find nothing to do.
    for (const id of ids) d.run('workOrder.retry', { workflowId, workOrderId: id });
    d.advance(1);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'late', taskType: 't' }));
    failOnce(d, workflowId, 'late');
    d.advance(SETTINGS.backoffBaseMs);

    expect(d.run('hub.sweep', {}).reply).toMatchObject({ more: true });
    expect(orderOf(d, workflowId, 'late')).toMatchObject({ state: 'queued', notBefore: expect.any(Number) });
    expect(d.run('hub.sweep', {}).reply).toMatchObject({ more: false });
    expect(orderOf(d, workflowId, 'late')).toMatchObject({ state: 'offered', notBefore: null });
    expect(d.state.work.delayed.size).toBe(0);
  });

  it('leaves dependents to be retried one by one, after their failed dependency: refused before, blocked until it completes after', () => {
    const d = domain();
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'load', taskType: 't', maxAttempts: 1 }, { id: 'clean', taskType: 't', dependencies: ['load'] }] }));
    d.register('w', { taskTypes: ['t'] });
    failOnce(d, workflowId, 'load');
    expect(orderOf(d, workflowId, 'clean')).toMatchObject({ state: 'failed', error: 'dependency load failed' });

    const before = structuredClone(d.state.workflows.get(workflowId));
    expect(() => d.run('workOrder.retry', { workflowId, workOrderId: 'clean' })).toThrow('work order clean cannot be retried: its dependency load is failed (retry load first)');
    expect(d.state.workflows.get(workflowId)).toEqual(before);

    d.run('workOrder.retry', { workflowId, workOrderId: 'load' });
    expect(orderOf(d, workflowId, 'clean').state).toBe('failed');
    d.run('workOrder.retry', { workflowId, workOrderId: 'clean' });
    expect(orderOf(d, workflowId, 'clean')).toMatchObject({ state: 'blocked', retried: { attempts: 0 } });
    const token = orderOf(d, workflowId, 'load').attempt!.token;
    d.run('offer.answer', { workflowId, workOrderId: 'load', attemptToken: token, accept: true }, asAgent('w'));
    d.run('task.complete', { workflowId, workOrderId: 'load', attemptToken: token }, asAgent('w'));
    expect(orderOf(d, workflowId, 'clean')).toMatchObject({ state: 'offered', attempt: { number: 1 } });
    expect(counts(d, workflowId).kept).toEqual(counts(d, workflowId).recounted);
  });

  it('refuses, changing nothing: an order offered, running, completed, cancelled, blocked or pending; one whose dependency was cancelled or whose input is gone; an unknown order; an ended workflow', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'], maxConcurrentTasks: 5 });
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({
      workflowId,
      orders: [
        { id: 'offered', taskType: 't' },
        { id: 'running', taskType: 't' },
        { id: 'done', taskType: 't' },
        { id: 'cancelled', taskType: 't' },
        { id: 'blocked', taskType: 't', dependencies: ['running'] },
        { id: 'orphan', taskType: 'nobody', dependencies: ['cancelled'] },
      ],
    }));
    const accept = (id: string) => {
      const token = orderOf(d, workflowId, id).attempt!.token;
      d.run('offer.answer', { workflowId, workOrderId: id, attemptToken: token, accept: true }, asAgent('w'));
      return token;
    };
    accept('running');
    d.run('task.complete', { workflowId, workOrderId: 'done', attemptToken: accept('done') }, asAgent('w'));
    d.run('workOrder.cancel', { workflowId, workOrderId: 'cancelled' });
    expect(orderOf(d, workflowId, 'orphan')).toMatchObject({ state: 'failed', error: 'dependency cancelled cancelled' });

    const pending = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'not started' })).reply.workflow.id;
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId: pending, id: 'early', taskType: 't' }));
    const ended = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId: ended, id: 'late', taskType: 'nobody' }));
    d.run('workflow.cancel', { workflowId: ended });

    const cases: Array<[string, string, string]> = [
      [workflowId, 'offered', 'INVALID_TRANSITION'],
      [workflowId, 'running', 'INVALID_TRANSITION'],
      [workflowId, 'done', 'INVALID_TRANSITION'],
      [workflowId, 'cancelled', 'INVALID_TRANSITION'],
      [workflowId, 'blocked', 'INVALID_TRANSITION'],
      [workflowId, 'orphan', 'CONFLICT'],
      [workflowId, 'nothing', 'NOT_FOUND'],
      ['wf-nowhere', 'job', 'NOT_FOUND'],
      [pending, 'early', 'INVALID_TRANSITION'],
      [ended, 'late', 'INVALID_TRANSITION'],
    ];
    for (const [wf, id, code] of cases) {
      const before = structuredClone(d.state.workflows.get(wf));
      const version = d.state.versions.get(wf);
      expect(codeOfCall(() => d.run('workOrder.retry', { workflowId: wf, workOrderId: id })), `${wf}/${id}`).toBe(code);
      expect(d.state.workflows.get(wf), `${wf}/${id}`).toEqual(before);
      expect(d.state.versions.get(wf), `${wf}/${id}`).toBe(version);
    }
  });

  it('refuses an order whose input does not exist once its dependencies are done, with NOT_FOUND', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'make', taskType: 't' }, { id: 'read', taskType: 't', dependencies: ['make'], inputs: ['made'] }] }));
    const token = orderOf(d, workflowId, 'make').attempt!.token;
    d.run('offer.answer', { workflowId, workOrderId: 'make', attemptToken: token, accept: true }, asAgent('w'));
    d.run('task.complete', { workflowId, workOrderId: 'make', attemptToken: token }, asAgent('w'));
    expect(orderOf(d, workflowId, 'read')).toMatchObject({ state: 'failed', error: 'input data reference made does not exist' });
    const version = d.state.versions.get(workflowId);
    expect(() => d.run('workOrder.retry', { workflowId, workOrderId: 'read' })).toThrow('input data reference made of read does not exist');
    expect(d.state.versions.get(workflowId)).toBe(version);
  });

  it('keeps what a retry did across a restart: the order queued with its fresh budget, its old declines forgotten', () => {
    const d = domain();
    d.register('w', { taskTypes: ['t'] });
    const workflowId = startWorkflow(d);
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', maxAttempts: 1 }));
    failOnce(d, workflowId, 'job');
    d.run('agent.update', { agentId: 'w', status: 'draining' });
    d.run('workOrder.retry', { workflowId, workOrderId: 'job' });
    expect(orderOf(d, workflowId, 'job')).toMatchObject({ state: 'queued', retried: { attempts: 1 } });

    const docs = new Map(storedDocs(d.state).map(([key, stored]) => [key, copyJson(stored)]));
    const restarted = domain(stateFromDocs(docs, 5_000));
    restarted.run('hub.recover', {});
    restarted.register('w', { taskTypes: ['t'] });
    restarted.run('agent.update', { agentId: 'w', status: 'active' });
    expect(orderOf(restarted, workflowId, 'job')).toMatchObject({ state: 'offered', attempt: { number: 2 } });
    failOnce(restarted, workflowId, 'job');
    expect(orderOf(restarted, workflowId, 'job')).toMatchObject({ state: 'failed', error: 'failed after 1 attempt(s) since its retry: disk full' });
  });
});
