import type { ParsedRequestOf } from '../../../shared/contract.ts';
import { versionOf } from '../machinery/state.ts';
import { requireEntity, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { addToWorkflow, touch } from './workflows.ts';

/** Adds an objective, pending with no progress. */
export function addObjective(t: CommandContext, input: ParsedRequestOf<'control', 'objective.add'>) {
  return addToWorkflow(t, input.workflowId, 'objectives', { id: input.id, kind: 'objective', prefix: 'obj' }, (id, now) => ({
    id,
    name: input.name,
    description: input.description,
    target: input.target,
    priority: input.priority,
    status: 'pending',
    progress: 0,
    createdAt: now,
    updatedAt: now,
  }));
}

/**
 * Updates an objective. Without an explicit status, progress 100 completes it; progress above 0
 * moves a pending objective to in_progress; progress below 100 reopens a completed one
 * (in_progress, or pending at 0). A failed objective stays failed until a status says otherwise.
 */
export function updateObjective(t: CommandContext, input: ParsedRequestOf<'control', 'objective.update'>) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  const objective = requireEntity(workflow.objectives, input.objectiveId, 'objective', workflow.id);
  const { workflowId, objectiveId, ...fields } = input;
  let status = fields.status;
  // A failed objective keeps its status: progress says how far it got, not that it succeeded.
  if (status === undefined && fields.progress !== undefined && objective.status !== 'failed') {
    if (fields.progress === 100) status = 'completed';
    else if (objective.status === 'completed') status = fields.progress > 0 ? 'in_progress' : 'pending';
    else if (fields.progress > 0 && objective.status === 'pending') status = 'in_progress';
  }
  t.tx.assign(workflowId, ['objectives', objectiveId], { ...fields, status, updatedAt: t.ctx.now });
  touch(t, workflowId);
  return { version: versionOf(t.state, workflowId), item: objective };
}
