import type { CommandContext } from '../machinery/context.ts';
import { isEnded } from '../machinery/context.ts';
import { versionOf } from '../machinery/state.ts';

/**
 * Takes an ended workflow out of memory once the archive holds it at `version`. A workflow that
 * is gone, not ended or at another version is left as it is (the archiver writes it again later).
 * Its index entries go too, without an undo: a rolled-back batch rebuilds the index.
 */
export function evictWorkflow(t: CommandContext, input: { workflowId: string; version: number }): { evicted: boolean } {
  const workflow = t.state.workflows.get(input.workflowId);
  if (!workflow || !isEnded(workflow) || versionOf(t.state, input.workflowId) !== input.version) return { evicted: false };
  t.tx.dropDoc(input.workflowId);
  t.state.work.forgetWorkflow(input.workflowId);
  t.state.inventory.forget(input.workflowId);
  return { evicted: true };
}
