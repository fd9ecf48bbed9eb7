import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { Actor } from '../machinery/actor.ts';
import { requireOpen, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { versionOf } from '../machinery/state.ts';
import { touch } from '../workflows/workflows.ts';
import { markResumed, unmarkPaused } from './unservable.ts';

// workflow.pause and workflow.resume: the operator stops offering one workflow's work without
// cancelling it. Only offering stops: attempts out go on, orders still queue (and fail, retry, time
// out) as before. The index keeps the paused workflow's buckets out of the free agents' way
// (WorkIndex.pause), so pausing costs the other workflows nothing.

/** What pause and resume answer: the workflow's status and pause as they are now. */
function pauseReply(t: CommandContext, workflow: Workflow) {
  return { version: versionOf(t.state, workflow.id), status: workflow.status, paused: workflow.paused ?? null };
}

/** workflow.pause: none of its orders is offered until it is resumed; a paused workflow is answered as it is. */
export function pauseWorkflow(t: CommandContext, input: ParsedRequestOf<'control', 'workflow.pause'>, actor: Actor) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  requireOpen(workflow, 'pause it');
  if (workflow.paused) return pauseReply(t, workflow);
  const work = t.state.work;
  const buckets = work.pause(workflow.id);
  t.tx.onUndo(() => work.resume(workflow.id));
  unmarkPaused(t, workflow, buckets);
  t.tx.set(workflow.id, ['paused'], { at: t.ctx.now, by: actor.name, reason: input.reason ?? null });
  touch(t, workflow.id);
  t.tx.effect({ type: 'workflow.paused', workflowId: workflow.id, by: actor.name, reason: input.reason ?? null, queued: workflow.workOrderCounts.queued });
  return pauseReply(t, workflow);
}

/** workflow.resume: a paused workflow's queued orders are offered again, to the free agents at once; one not paused is answered as it is. */
export function resumeWorkflow(t: CommandContext, input: ParsedRequestOf<'control', 'workflow.resume'>, actor: Actor) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  requireOpen(workflow, 'resume it');
  const paused = workflow.paused;
  if (!paused) return pauseReply(t, workflow);
  const work = t.state.work;
  const buckets = work.resume(workflow.id, t.ctx.now);
  t.tx.onUndo(() => work.pause(workflow.id));
  t.tx.set(workflow.id, ['paused'], null);
  markResumed(t, buckets);
  // The agents that may have a free slot for its work take the best they can now (scheduler.ts).
  const taskTypes = new Set(buckets.map((bucket) => bucket.taskType)).add('*');
  for (const taskType of taskTypes) for (const agentId of work.available.of(taskType)?.filed.keys() ?? []) work.freed.add(agentId);
  touch(t, workflow.id);
  t.tx.effect({ type: 'workflow.resumed', workflowId: workflow.id, by: actor.name, pausedMs: Math.max(0, t.ctx.now - paused.at), queued: workflow.workOrderCounts.queued });
  return pauseReply(t, workflow);
}

/** A workflow that ends is no longer paused: nothing of it is offered again either way. */
export function endPause(t: CommandContext, workflow: Workflow): void {
  if (!workflow.paused) return;
  t.tx.set(workflow.id, ['paused'], null);
  t.state.work.resume(workflow.id);
  t.tx.onUndo(() => t.state.work.pause(workflow.id));
}
