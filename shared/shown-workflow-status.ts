import type { WorkflowStatus } from './schemas/workflow.ts';

/** How a workflow's status is shown (dashboard, `switchboard status`): `in_progress (paused)` while it is paused (workflow.pause). */
export function shownWorkflowStatus(status: WorkflowStatus, paused: boolean): string {
  return paused ? `${status} (paused)` : status;
}
