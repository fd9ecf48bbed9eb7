import { describe, expect, it } from 'vitest';
import { applyPatch } from '../../shared/patch.ts';
import type { SummaryView } from '../../shared/schemas/views.ts';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { workflowSummary } from '../../server/domain/machinery/queries.ts';
import { workflowView } from '../../server/domain/workflows/views.ts';
import { domain } from '../helpers/domain.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';

const create = (d: ReturnType<typeof domain>, userQuery = 'Analyze customer data') =>
  d.run('workflow.create', CreateWorkflowInput.parse({ userQuery })).reply.workflow.id;

describe('workflow lifecycle (domain)', () => {
  it('moves pending → in_progress → completed and stamps the times', () => {
    const d = domain();
    const id = create(d);
    d.advance(10);
    d.run('workflow.start', { workflowId: id });
    d.advance(25);
    const { reply } = d.run('workflow.complete', { workflowId: id });
    const workflow = d.state.workflows.get(id)!;
    expect(reply.status).toBe('completed');
    expect(workflow.startedAt).toBe(1010);
    expect(workflow.endedAt).toBe(1035);
    expect(workflow.progress).toBe(100);
  });

  it('refuses illegal transitions with INVALID_TRANSITION and changes nothing', () => {
    const d = domain();
    const id = create(d);
    const before = structuredClone(d.state.workflows.get(id));
    const version = d.state.versions.get(id);
    expect(codeOf(() => d.run('workflow.complete', { workflowId: id }))).toBe('INVALID_TRANSITION');
    expect(d.state.workflows.get(id)).toEqual(before);
    expect(d.state.versions.get(id)).toBe(version);
    d.run('workflow.start', { workflowId: id });
    d.run('workflow.complete', { workflowId: id });
    const completed = structuredClone(d.state.workflows.get(id));
    expect(codeOf(() => d.run('workflow.start', { workflowId: id }))).toBe('INVALID_TRANSITION');
    expect(codeOf(() => d.run('workflow.fail', { workflowId: id, reason: 'late' }))).toBe('INVALID_TRANSITION');
    expect(d.state.workflows.get(id)).toEqual(completed);
    expect(d.state.versions.get(id)).toBe(version! + 2);
  });

  it('records the failure reason and allows cancelling a pending workflow', () => {
    const d = domain();
    const a = create(d);
    const b = create(d);
    d.run('workflow.start', { workflowId: a });
    d.run('workflow.fail', { workflowId: a, reason: 'source unreachable' });
    d.run('workflow.cancel', { workflowId: b });
    expect(d.state.workflows.get(a)).toMatchObject({ status: 'failed', failureReason: 'source unreachable' });
    expect(d.state.workflows.get(b)!.status).toBe('cancelled');
  });

  it('reports NOT_FOUND for an unknown workflow and CONFLICT for a taken id', () => {
    const d = domain();
    expect(codeOf(() => d.run('workflow.start', { workflowId: 'nope' }))).toBe('NOT_FOUND');
    d.run('workflow.create', CreateWorkflowInput.parse({ id: 'mine', userQuery: 'q' }));
    expect(codeOf(() => d.run('workflow.create', CreateWorkflowInput.parse({ id: 'mine', userQuery: 'q' })))).toBe('CONFLICT');
  });

  it('bumps the version once per command and emits patches that rebuild the document', () => {
    const d = domain();
    const id = create(d);
    const mirror = structuredClone(d.state.workflows.get(id));
    const { tx } = d.run('workflow.start', { workflowId: id });
    expect(d.state.versions.get(id)).toBe(2);
    const ops = tx.changes.get(id)!;
    expect(applyPatch(mirror, ops)).toEqual(d.state.workflows.get(id));
  });
});

describe('execution steps (domain)', () => {
  it('times a step from start to completion and keeps its agent and work order', () => {
    const d = domain();
    const id = create(d);
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: id, orders: [{ id: 'wo1', taskType: 't' }] }));
    const step = d.run('step.add', { workflowId: id, name: 'load', description: '', agentId: 'a1', workOrderId: 'wo1', start: false }).reply.item;
    expect(step.status).toBe('pending');
    d.advance(5);
    d.run('step.start', { workflowId: id, stepId: step.id });
    d.advance(40);
    const done = d.run('step.complete', { workflowId: id, stepId: step.id, result: { rows: 10 } }).reply.item;
    expect(done).toMatchObject({ status: 'completed', startedAt: 1005, endedAt: 1045, durationMs: 40, agentId: 'a1', workOrderId: 'wo1', result: { rows: 10 } });
  });

  it('fails a running step with its error and refuses to complete it afterwards', () => {
    const d = domain();
    const id = create(d);
    const step = d.run('step.add', { workflowId: id, name: 'clean', description: '', start: true }).reply.item;
    d.run('step.fail', { workflowId: id, stepId: step.id, error: 'bad rows' });
    expect(d.state.workflows.get(id)!.steps[step.id]).toMatchObject({ status: 'failed', error: 'bad rows' });
    expect(codeOf(() => d.run('step.complete', { workflowId: id, stepId: step.id }))).toBe('INVALID_TRANSITION');
  });
});

describe('objectives, KPIs and progress (domain)', () => {
  it('completes an objective when its progress reaches 100', () => {
    const d = domain();
    const id = create(d);
    const objective = d.run('objective.add', { workflowId: id, name: 'Analysis', description: '', target: '100%', priority: 'high' }).reply.item;
    d.run('objective.update', { workflowId: id, objectiveId: objective.id, progress: 40 });
    expect(d.state.workflows.get(id)!.objectives[objective.id]!.status).toBe('in_progress');
    d.run('objective.update', { workflowId: id, objectiveId: objective.id, progress: 100 });
    expect(d.state.workflows.get(id)!.objectives[objective.id]).toMatchObject({ status: 'completed', progress: 100 });
  });

  it('reopens a completed objective whose progress falls below 100, and leaves a failed one failed', () => {
    const d = domain();
    const id = create(d);
    const add = (name: string) => d.run('objective.add', { workflowId: id, name, description: '', target: '100%', priority: 'high' }).reply.item.id;
    const update = (objectiveId: string, fields: { progress?: number; status?: 'failed' | 'completed' }) => {
      d.run('objective.update', { workflowId: id, objectiveId, ...fields });
      return d.state.workflows.get(id)!.objectives[objectiveId]!;
    };
    const done = add('done');
    update(done, { progress: 100 });
    expect(update(done, { progress: 60 })).toMatchObject({ status: 'in_progress', progress: 60 });
    update(done, { progress: 100 });
    expect(update(done, { progress: 0 })).toMatchObject({ status: 'pending', progress: 0 });
    expect(update(done, { progress: 30, status: 'completed' })).toMatchObject({ status: 'completed', progress: 30 });
    const failed = add('failed');
    update(failed, { status: 'failed' });
    expect(update(failed, { progress: 50 })).toMatchObject({ status: 'failed', progress: 50 });
    // Even at 100: how far it got before it failed, not a success.
    expect(update(failed, { progress: 100 })).toMatchObject({ status: 'failed', progress: 100 });
    expect(update(failed, { progress: 100, status: 'completed' })).toMatchObject({ status: 'completed', progress: 100 });
  });

  it('keeps KPI history bounded, tracks the current value and whether the target is met', () => {
    const d = domain();
    const id = create(d);
    const latency = d.run('kpi.add', { workflowId: id, name: 'Latency', description: '', target: 200, unit: 'ms', direction: 'lower' }).reply.item;
    for (const value of [500, 300, 250, 180]) d.run('kpi.record', { workflowId: id, kpiId: latency.id, value });
    const kpi = d.state.workflows.get(id)!.kpis[latency.id]!;
    expect(kpi.current).toBe(180);
    expect(kpi.met).toBe(true);
    expect(kpi.samples).toBe(4);
    expect(kpi.history.map((h) => h.value)).toEqual([300, 250, 180]);
  });

  it('derives overall progress as the mean of the stages', () => {
    const d = domain();
    const id = create(d);
    d.run('workflow.progress', { workflowId: id, stage: 'loading', percentage: 100 });
    d.run('workflow.progress', { workflowId: id, stage: 'cleaning', percentage: 50 });
    d.run('workflow.progress', { workflowId: id, stage: 'analysis', percentage: 0 });
    const workflow = d.state.workflows.get(id)!;
    expect(workflow.progress).toBe(50);
    expect(workflow.stages.loading!.completedAt).toBe(1000);
    expect(workflow.stages.cleaning!.completedAt).toBeNull();
  });

  it('keeps overall progress below 100 while a stage is: 100 and 99.99 are 99.99, not a rounded 100', () => {
    const d = domain();
    const id = create(d);
    d.run('workflow.progress', { workflowId: id, stage: 'build', percentage: 100 });
    d.run('workflow.progress', { workflowId: id, stage: 'ship', percentage: 99.99 });
    expect(d.state.workflows.get(id)!.progress).toBe(99.99);
    d.run('workflow.progress', { workflowId: id, stage: 'ship', percentage: 100 });
    expect(d.state.workflows.get(id)!.progress).toBe(100);
  });

  it('shows 100 once a workflow completes, while its stages keep theirs; failing or cancelling keeps the stage mean', () => {
    const d = domain();
    const [completed, failed, cancelled] = [create(d), create(d), create(d)];
    for (const id of [completed, failed, cancelled]) {
      d.run('workflow.start', { workflowId: id });
      d.run('workflow.progress', { workflowId: id, stage: 'loading', percentage: 20 });
    }
    d.run('workflow.complete', { workflowId: completed });
    d.run('workflow.fail', { workflowId: failed, reason: 'source gone' });
    d.run('workflow.cancel', { workflowId: cancelled });
    const progressOf = (id: string) => [d.state.workflows.get(id)!.progress, d.state.workflows.get(id)!.stages.loading!.progress];
    expect(progressOf(completed)).toEqual([100, 20]);
    expect(progressOf(failed)).toEqual([20, 20]);
    expect(progressOf(cancelled)).toEqual([20, 20]);
    // And a finished workflow takes no more stage progress.
    expect(codeOf(() => d.run('workflow.progress', { workflowId: failed, stage: 'loading', percentage: 90 }))).toBe('INVALID_TRANSITION');
  });

  it('without stage updates, follows its work orders: the share that ended, so an order still queued keeps it below 100', () => {
    const d = domain();
    const id = create(d);
    d.register('worker', { taskTypes: ['t'], maxConcurrentTasks: 3 });
    d.run('workflow.start', { workflowId: id });
    const orders = [{ id: 'a', taskType: 't' }, { id: 'b', taskType: 't' }, { id: 'c', taskType: 't' }, { id: 'd', taskType: 'gpu-render' }];
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: id, orders }));
    const shown = () => {
      const summary = workflowSummary(d.state, id, 0);
      const view = workflowView(d.state, id, { kind: 'summary' }) as SummaryView;
      expect([view.progress, view.progressFrom, view.orderProgress]).toEqual([summary.progress, summary.progressFrom, summary.orderProgress]);
      return [summary.progress, summary.progressFrom, summary.orderProgress];
    };
    expect(shown()).toEqual([0, 'orders', 0]);
    const agent = { role: 'agent' as const, name: 'worker', agentId: 'worker' };
    for (const [workOrderId, end] of [['a', 'complete'], ['b', 'complete'], ['c', 'fail']] as const) {
      const ref = { workflowId: id, workOrderId, attemptToken: d.state.workflows.get(id)!.workOrders[workOrderId]!.attempt!.token };
      d.run('offer.answer', { ...ref, accept: true }, agent);
      if (end === 'complete') d.run('task.complete', ref, agent);
      else d.run('task.fail', { ...ref, error: 'bad input', retryable: false }, agent);
    }
    // Completed, and failed for good, both ended; `d` waits for an agent nobody runs.
    expect(shown()).toEqual([75, 'orders', 75]);
    // Cancelling the workflow ends `d` too, but keeps the value the workflow had, as with stages.
    d.run('workflow.cancel', { workflowId: id });
    expect(shown()).toEqual([75, 'orders', 75]);
  });

  it('with stage updates, takes progress from the stages and shows the orders\' share beside it', () => {
    const d = domain();
    const id = create(d);
    d.run('workflow.start', { workflowId: id });
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: id, orders: [{ id: 'a', taskType: 't' }, { id: 'b', taskType: 't' }] }));
    d.run('workOrder.cancel', { workflowId: id, workOrderId: 'a' });
    expect(d.state.workflows.get(id)!.progress).toBe(50);
    d.run('workflow.progress', { workflowId: id, stage: 'render', percentage: 10 });
    const summary = workflowSummary(d.state, id, 0);
    expect([summary.progress, summary.progressFrom, summary.orderProgress]).toEqual([10, 'stages', 50]);
    d.run('workOrder.cancel', { workflowId: id, workOrderId: 'b' });
    expect([d.state.workflows.get(id)!.progress, d.state.workflows.get(id)!.orderProgress]).toEqual([10, 100]);
  });

  it('says progress comes from the stages, with no order progress, for a workflow with neither', () => {
    const d = domain();
    const id = create(d);
    expect(workflowSummary(d.state, id, 0)).toMatchObject({ progress: 0, progressFrom: 'stages', orderProgress: null });
  });

  it('rolls back every change of a command that fails half-way', () => {
    const d = domain();
    const id = create(d);
    const before = structuredClone(d.state.workflows.get(id));
    expect(codeOf(() => d.run('objective.update', { workflowId: id, objectiveId: 'missing', progress: 10 }))).toBe('NOT_FOUND');
    expect(d.state.workflows.get(id)).toEqual(before);
  });
});
