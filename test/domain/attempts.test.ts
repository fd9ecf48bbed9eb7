import { describe, expect, it } from 'vitest';
import { DataReferenceSpec } from '../../shared/schemas/data.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { domain } from '../helpers/domain.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });
/** A data reference as the transport hands it to the domain (nothing observed on disk). */
const spec = (id: string, path: string) => ({ ...DataReferenceSpec.parse({ id, path }), observed: null });

/** A started workflow with one order offered (not yet accepted) to agent `w`. */
function offered(orderFields: Record<string, unknown> = {}) {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  d.register('w');
  d.register('other');
  d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', ...orderFields }));
  const order = () => d.state.workflows.get(workflowId)!.workOrders.job!;
  const attempt = order().attempt!;
  expect(order().state).toBe('offered');
  const ref = { workflowId, workOrderId: 'job', attemptToken: attempt.token };
  return { d, workflowId, order, ref, agentId: attempt.agentId };
}

/** The hub's record of the attempt in flight (phase and lease), or undefined. */
const inFlight = (d: Domain, token: string) => ({ phase: d.state.work.active.get(token)?.phase, lease: d.state.work.leases.get(token) });

describe('reporting before the accept arrives (domain)', () => {
  it('takes a progress report on an offered attempt as its accept, then records the progress', () => {
    const { d, order, ref, agentId } = offered({ timeouts: { leaseMs: 5_000 } });
    d.advance(10);
    d.run('task.progress', { ...ref, progress: 20, message: 'started' }, asAgent(agentId));
    // The attempt started when it was offered (the agent started without answering); its lease runs from the report.
    expect(order()).toMatchObject({ state: 'running', attempts: 1, startedAt: 1000, progress: 20, message: 'started' });
    expect(order().attempt).toMatchObject({ token: ref.attemptToken, acceptedAt: 1000 });
    expect(inFlight(d, ref.attemptToken)).toEqual({ phase: 'running', lease: 1010 + 5_000 });
    // The accept ack that was on its way arrives afterwards: it changes nothing.
    const late = d.run('offer.answer', { ...ref, accept: true }, asAgent(agentId));
    expect(late.tx.empty).toBe(true);
    expect(order()).toMatchObject({ state: 'running', attempts: 1, progress: 20 });
  });

  it('completes an offered attempt whose completion arrives before its accept, once', () => {
    const { d, workflowId, order, ref, agentId } = offered();
    d.run('task.complete', { ...ref, result: { ok: true } }, asAgent(agentId));
    expect(order()).toMatchObject({ state: 'completed', attempts: 1, result: { ok: true }, attempt: null });
    expect(order().history).toEqual([expect.objectContaining({ number: 1, agentId, outcome: 'completed' })]);
    expect(d.state.agents![agentId]).toMatchObject({ load: 0, stats: { assigned: 1, completed: 1, declined: 0 } });
    expect(d.state.workflows.get(workflowId)!.workOrderCounts).toMatchObject({ completed: 1, offered: 0, running: 0 });
    expect(d.run('offer.answer', { ...ref, accept: true }, asAgent(agentId)).tx.empty).toBe(true);
  });

  it('times an attempt whose completion was its accept from the offer, in its history and its agent\'s stats', () => {
    const { d, workflowId, order, ref, agentId } = offered();
    d.advance(250);
    d.run('task.complete', { ...ref, result: { ok: true } }, asAgent(agentId));
    expect(order()).toMatchObject({ startedAt: 1000, endedAt: 1250 });
    expect(order().history).toEqual([expect.objectContaining({ startedAt: 1000, endedAt: 1250 })]);
    expect(d.state.agents![agentId]!.stats.byTaskType.t).toMatchObject({ completed: 1, avgMs: 250, p95Ms: 250, recentMs: [250] });
    expect(d.state.workflows.get(workflowId)!.agents[agentId]).toMatchObject({ completed: 1, busyMs: 250 });
  });

  it('times an explicitly accepted attempt from its accept, and an implied accept never after the report', () => {
    const explicit = offered();
    explicit.d.advance(40);
    explicit.d.run('offer.answer', { ...explicit.ref, accept: true }, asAgent(explicit.agentId));
    explicit.d.advance(60);
    explicit.d.run('task.complete', { ...explicit.ref }, asAgent(explicit.agentId));
    expect(explicit.order().history).toEqual([expect.objectContaining({ startedAt: 1040, endedAt: 1100 })]);
    // The wall clock stepped back below the offer's time: the attempt starts at the report, not in its future.
    const stepped = offered();
    stepped.d.advance(-500);
    stepped.d.run('task.progress', { ...stepped.ref, progress: 5 }, asAgent(stepped.agentId));
    expect(stepped.order()).toMatchObject({ startedAt: 500, attempt: { acceptedAt: 500 } });
  });

  it('counts a failure reported before the accept as a started attempt, and retries it', () => {
    const { d, order, ref, agentId } = offered();
    d.run('task.fail', { ...ref, error: 'no disk', retryable: true }, asAgent(agentId));
    expect(order()).toMatchObject({ state: 'queued', attempts: 1, error: 'no disk' });
    expect(order().history).toEqual([expect.objectContaining({ number: 1, agentId, outcome: 'failed', error: 'no disk' })]);
  });

  it('takes a heartbeat naming an offered attempt as its accept, and starts its lease', () => {
    const { d, order, ref, agentId } = offered({ timeouts: { leaseMs: 5_000 } });
    d.advance(30);
    const { reply } = d.run('agent.heartbeat', { attemptTokens: [ref.attemptToken] }, asAgent(agentId));
    expect(reply).toEqual({ renewed: [ref.attemptToken], lost: [] });
    expect(order()).toMatchObject({ state: 'running', attempts: 1, startedAt: 1000 });
    expect(inFlight(d, ref.attemptToken)).toEqual({ phase: 'running', lease: 1030 + 5_000 });
  });

  it('still refuses a report on an offered attempt from another agent (FORBIDDEN) or with a stale token (STALE_ATTEMPT)', () => {
    const { d, workflowId, order, ref, agentId } = offered();
    const stranger = agentId === 'w' ? 'other' : 'w';
    const version = d.state.versions.get(workflowId);
    expect(codeOf(() => d.run('task.progress', { ...ref, progress: 5 }, asAgent(stranger)))).toBe('FORBIDDEN');
    expect(codeOf(() => d.run('task.complete', { ...ref }, asAgent(stranger)))).toBe('FORBIDDEN');
    expect(codeOf(() => d.run('task.progress', { ...ref, attemptToken: 'att_old', progress: 5 }, asAgent(agentId)))).toBe('STALE_ATTEMPT');
    expect(codeOf(() => d.run('task.fail', { ...ref, attemptToken: 'att_old', error: 'x', retryable: true }, asAgent(agentId)))).toBe('STALE_ATTEMPT');
    expect(d.run('agent.heartbeat', { attemptTokens: [ref.attemptToken] }, asAgent(stranger)).reply).toEqual({ renewed: [], lost: [ref.attemptToken] });
    expect(order()).toMatchObject({ state: 'offered', attempts: 0 });
    expect(inFlight(d, ref.attemptToken)).toEqual({ phase: 'offered', lease: undefined });
    expect(d.state.versions.get(workflowId)).toBe(version);
  });

  it('undoes the implicit accept when the report itself is refused, leaving the offer open', () => {
    const { d, workflowId, order, ref, agentId } = offered();
    d.run('data.register', { workflowId, items: [spec('taken', 's3://b/x')] });
    expect(codeOf(() => d.run('task.complete', { ...ref, outputs: [spec('taken', 's3://b/y')] }, asAgent(agentId)))).toBe('CONFLICT');
    expect(order()).toMatchObject({ state: 'offered', attempts: 0, attempt: { acceptedAt: null } });
    expect(inFlight(d, ref.attemptToken)).toEqual({ phase: 'offered', lease: undefined });
    // The offer can still be answered as usual.
    d.run('offer.answer', { ...ref, accept: true }, asAgent(agentId));
    expect(order().state).toBe('running');
  });
});

describe('declining an offer (domain)', () => {
  /** A started workflow, agent `w` alone for task type `t`, and order `job` offered to it. */
  function offeredToOne() {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.register('w', { taskTypes: ['t'] });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't' }));
    const order = () => d.state.workflows.get(workflowId)!.workOrders.job!;
    const ref = { workflowId, workOrderId: 'job', attemptToken: order().attempt!.token };
    return { d, order, ref };
  }

  it('holds a decline against the agent: the order is not offered to it again', () => {
    const { d, order, ref } = offeredToOne();
    d.run('offer.answer', { ...ref, accept: false, reason: 'not mine' }, asAgent('w'));
    expect(order()).toMatchObject({ state: 'queued', declinedBy: ['w'], attempts: 0 });
  });

  it('does not hold it against an agent that is draining: once it resumes, the order is offered to it again', () => {
    const { d, order, ref } = offeredToOne();
    // The SDK's drain() tells the hub first, then declines what reaches it.
    d.run('agent.status', { status: 'draining' }, asAgent('w'));
    d.run('offer.answer', { ...ref, accept: false, reason: 'draining' }, asAgent('w'));
    expect(order()).toMatchObject({ state: 'queued', declinedBy: [], attempts: 0 });
    d.run('agent.status', { status: 'active' }, asAgent('w'));
    expect(order()).toMatchObject({ state: 'offered', declinedBy: [], attempt: { agentId: 'w' } });
    expect(order().attempt!.token).not.toBe(ref.attemptToken);
  });

  it('counts in the agent\'s declined stats only its own declines and silence, not offers withdrawn as it disconnects or reconnects', () => {
    const { d, order, ref } = offeredToOne();
    const declined = () => d.state.agents!.w!.stats.declined;
    d.run('agent.disconnect', { agentId: 'w' });
    expect(order()).toMatchObject({ state: 'queued', declinedBy: [] });
    d.register('w');
    expect(order().state).toBe('offered');
    d.register('w');
    expect(order()).toMatchObject({ state: 'offered', declinedBy: [] });
    expect(declined()).toBe(0);
    d.run('offer.answer', { ...ref, attemptToken: order().attempt!.token, accept: false, reason: 'not mine' }, asAgent('w'));
    expect(declined()).toBe(1);
    expect(d.state.workflows.get(ref.workflowId)!.agents.w).toMatchObject({ declined: 1 });
  });

  it('holds silence past acceptMs against the agent for a pushed offer, not for one carried in a reply (the reply may be what was lost)', () => {
    const { d, order, ref } = offeredToOne();
    const workflowId = ref.workflowId;
    d.run('task.progress', { ...ref, progress: 1 }, asAgent('w'));
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'next-job', taskType: 't' }));
    const { reply } = d.run('task.complete', { ...ref, result: 1, next: true }, asAgent('w'));
    const carried = (reply as { next?: Array<{ workOrderId: string; attemptToken: string }> }).next![0]!;
    expect(carried).toMatchObject({ workOrderId: 'next-job' });
    const next = () => d.state.workflows.get(workflowId)!.workOrders['next-job']!;
    d.advance(next().timeouts.acceptMs);
    expect(d.run('hub.sweep', {}).reply.expiredOffers).toBe(1);
    // Withdrawn without excluding the agent: it is offered to it again at once, pushed this time.
    expect(next()).toMatchObject({ state: 'offered', declinedBy: [], attempts: 0, attempt: { agentId: 'w' } });
    expect(next().attempt!.token).not.toBe(carried.attemptToken);
    d.advance(next().timeouts.acceptMs);
    expect(d.run('hub.sweep', {}).reply.expiredOffers).toBe(1);
    expect(next()).toMatchObject({ state: 'queued', declinedBy: ['w'] });
    expect(order().state).toBe('completed');
  });
});

describe('listing a workflow’s assignments (workflow.autoAssign, domain)', () => {
  it('lists those of the workflow from its agents’ attempts, looking at none of other workflows’', () => {
    const d = domain();
    const start = () => {
      const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
      d.run('workflow.start', { workflowId });
      return workflowId;
    };
    d.register('busy', { maxConcurrentTasks: 300 });
    for (let i = 0; i < 300; i++) d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId: start(), taskType: 't' }));
    d.register('mine', { taskTypes: ['mine'], maxConcurrentTasks: 2 });
    const workflowId = start();
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'a', taskType: 'mine' }));
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'b', taskType: 'mine' }));
    const token = d.state.workflows.get(workflowId)!.workOrders.a!.attempt!.token;
    d.run('offer.answer', { workflowId, workOrderId: 'a', attemptToken: token, accept: true }, asAgent('mine'));
    let looked = 0;
    const active = d.state.work.active;
    const values = active.values.bind(active);
    active.values = function* () {
      for (const attempt of values()) {
        looked++;
        yield attempt;
      }
    } as unknown as typeof active.values;
    const { reply } = d.run('workflow.autoAssign', { workflowId });
    expect(reply.assigned.sort((x, y) => (x.workOrderId < y.workOrderId ? -1 : 1))).toEqual([
      { workOrderId: 'a', agentId: 'mine', state: 'running' },
      { workOrderId: 'b', agentId: 'mine', state: 'offered' },
    ]);
    expect(looked).toBe(0);
  });
});
