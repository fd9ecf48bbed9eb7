import type { WorkOrder, WorkOrderState } from '../../shared/schemas/work-order.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { monitor } from './hub.ts';

/**
 * Resolves with the workflow once `predicate` holds, as a monitor following it sees it: checked
 * now and on every patch (an event, not a poll). Rejects after `timeoutMs` with `what` in the
 * message, so a hang names itself.
 */
export async function untilWorkflow(hub: { url: string }, workflowId: string, predicate: (workflow: Workflow) => boolean, what: string, timeoutMs = 15_000): Promise<Workflow> {
  const mirror = await (await monitor(hub)).subscribe(workflowId);
  return mirror.until(predicate, { what, timeoutMs });
}

/** A promise with its resolve function, for waiting on callbacks. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves with a work order once it reaches `state`, as a monitor following its workflow sees it. */
export async function untilOrder(hub: { url: string }, workflowId: string, workOrderId: string, state: WorkOrderState): Promise<WorkOrder> {
  const workflow = await untilWorkflow(hub, workflowId, (w) => w.workOrders[workOrderId]?.state === state, `work order ${workOrderId} ${state}`);
  // A copy: the mirror's objects change with later patches.
  return structuredClone(workflow.workOrders[workOrderId]!);
}

/**
 * Resolves once `predicate` holds, checked every few ms: for what happens inside the hub with no
 * event to follow (a workflow leaving memory). Rejects after `timeoutMs` naming `what` (as it stands then, when a function).
 */
export async function untilTrue(predicate: () => boolean, what: string | (() => string), timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * Resolves with the first defined answer of `look`, asked every few ms: for what another process
 * says when asked (a cluster node's GET /cluster), which pushes no event. Rejects after `timeoutMs`.
 */
export async function untilAnswer<T>(look: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await look();
    if (answer !== undefined) return answer;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
