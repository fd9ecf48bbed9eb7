import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { versionOf } from '../machinery/state.ts';
import { requireOpen, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { touch } from './workflows.ts';
import { orderShare, progressSource } from './order-progress.ts';

/**
 * Keeps `orderProgress` on the share of the orders that have ended, and `progress` with it while the
 * workflow has orders and no stage: after orders are created (the total grows) and when one ends.
 * Only while the workflow is open: as with stages, the end keeps the value it had (completing sets
 * `progress` to 100), and the orders a workflow's end cancels do not move it. O(1).
 */
export function followOrders(t: CommandContext, workflow: Workflow): void {
  if (workflow.status !== 'pending' && workflow.status !== 'in_progress') return;
  const share = orderShare(workflow.workOrderCounts);
  if (workflow.orderProgress !== share) t.tx.set(workflow.id, ['orderProgress'], share);
  if (share !== null && progressSource(workflow) === 'orders' && workflow.progress !== share) t.tx.set(workflow.id, ['progress'], share);
}

/** Overall progress: the mean of stage progress once `stage` is at `percentage`. Stages are few. */
function overallWith(workflow: Workflow, stage: string, percentage: number): number {
  let sum = percentage;
  let count = 1;
  let done = percentage >= 100;
  for (const [name, other] of Object.entries(workflow.stages)) {
    if (name === stage) continue;
    sum += other.progress;
    count++;
    done &&= other.progress >= 100;
  }
  const mean = Math.round((sum / count) * 100) / 100;
  // 100 only once every stage is: 100 and 99.99 rounded to 100 (as the orders' share, order-progress.ts).
  return done ? mean : Math.min(mean, 99.99);
}

/** Sets one stage's progress (0..100) and re-derives the overall progress: from the stages from now on. */
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
