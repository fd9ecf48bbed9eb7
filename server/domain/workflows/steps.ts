import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { Step, StepStatus } from '../../../shared/schemas/steps.ts';
import { versionOf } from '../machinery/state.ts';
import { requireEntity, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { addToWorkflow, touch } from './workflows.ts';

type Input<E extends 'step.add' | 'step.start' | 'step.complete' | 'step.fail'> = ParsedRequestOf<'control', E>;

/** The step reply: the step as stored and the version that holds it. */
function reply(t: CommandContext, workflowId: string, stepId: string): { version: number; item: Step } {
  return { version: versionOf(t.state, workflowId), item: requireWorkflow(t.state, workflowId).steps[stepId]! };
}

/** Adds an execution step, pending, or running when `start` is set; its work order, if named, must exist. */
export function addStep(t: CommandContext, input: Input<'step.add'>) {
  if (input.workOrderId !== undefined) requireEntity(requireWorkflow(t.state, input.workflowId).workOrders, input.workOrderId, 'work order', input.workflowId);
  return addToWorkflow(t, input.workflowId, 'steps', { id: input.id, kind: 'step', prefix: 'step' }, (id, now) => ({
    id,
    name: input.name,
    description: input.description,
    status: input.start ? 'running' : 'pending',
    agentId: input.agentId ?? null,
    workOrderId: input.workOrderId ?? null,
    createdAt: now,
    startedAt: input.start ? now : null,
    endedAt: null,
    durationMs: null,
    error: null,
  }));
}

/** Moves a step to `to` if it is in one of `from`, stamping start or end times. */
function moveStep(
  t: CommandContext,
  workflowId: string,
  stepId: string,
  from: readonly StepStatus[],
  to: StepStatus,
  extra: Partial<Pick<Step, 'error' | 'result'>> = {},
) {
  const workflow = requireWorkflow(t.state, workflowId);
  const step = requireEntity(workflow.steps, stepId, 'step', workflowId);
  if (!from.includes(step.status)) {
    throw new HubError('INVALID_TRANSITION', `cannot move step ${stepId} from ${step.status} to ${to}`);
  }
  const now = t.ctx.now;
  const path = ['steps', stepId];
  t.tx.set(workflowId, [...path, 'status'], to);
  if (to === 'running') {
    t.tx.set(workflowId, [...path, 'startedAt'], now);
  } else {
    t.tx.set(workflowId, [...path, 'endedAt'], now);
    // Never below 0 (the schema says so): the wall clock may have stepped back since the start.
    if (step.startedAt !== null) t.tx.set(workflowId, [...path, 'durationMs'], Math.max(0, now - step.startedAt));
  }
  t.tx.assign(workflowId, path, extra);
  touch(t, workflowId);
  return reply(t, workflowId, stepId);
}

/** pending → running. */
export function startStep(t: CommandContext, input: Input<'step.start'>) {
  return moveStep(t, input.workflowId, input.stepId, ['pending'], 'running');
}

/** running → completed, keeping the optional result. */
export function completeStep(t: CommandContext, input: Input<'step.complete'>) {
  return moveStep(t, input.workflowId, input.stepId, ['running'], 'completed', input.result === undefined ? {} : { result: input.result });
}

/** pending | running → failed, with the error. */
export function failStep(t: CommandContext, input: Input<'step.fail'>) {
  return moveStep(t, input.workflowId, input.stepId, ['pending', 'running'], 'failed', { error: input.error });
}
