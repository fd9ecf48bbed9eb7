import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { versionOf } from '../machinery/state.ts';
import { requireOpen, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { touch } from './workflows.ts';

/** Overall progress: the mean of stage progress once `stage` is at `percentage`. Stages are few. */
function overallWith(workflow: Workflow, stage: string, percentage: number): number {
  let sum = percentage;
  let count = 1;
  for (const [name, other] of Object.entries(workflow.stages)) {
    if (name === stage) continue;
    sum += other.progress;
    count++;
  }
  return Math.round((sum / count) * 100) / 100;
}

/** Sets one stage's progress (0..100) and re-derives the overall progress. */
export function updateProgress(t: CommandContext, input: ParsedRequestOf<'control', 'workflow.progress'>) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  requireOpen(workflow, 'update progress');
  const now = t.ctx.now;
  const existing = workflow.stages[input.stage];
  const progress = overallWith(workflow, input.stage, input.percentage);
  const completedAt = input.percentage === 100 ? (existing?.completedAt ?? now) : null;
  if (existing) {
    t.tx.assign(workflow.id, ['stages', input.stage], { progress: input.percentage, updatedAt: now, completedAt });
  } else {
    t.tx.set(workflow.id, ['stages', input.stage], { name: input.stage, progress: input.percentage, startedAt: now, updatedAt: now, completedAt });
  }
  t.tx.set(workflow.id, ['progress'], progress);
  touch(t, workflow.id);
  return { version: versionOf(t.state, workflow.id), item: workflow.stages[input.stage]! };
}
