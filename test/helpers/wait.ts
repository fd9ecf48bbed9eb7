import type { RunningHub } from '../../server/index.ts';
import type { WorkOrder, WorkOrderState } from '../../shared/schemas/work-order.ts';

/**
 * Resolves once `predicate` holds, checking now and after every batch the hub commits (an event,
 * not a poll). Rejects after `timeoutMs` with `what` in the message, so a hang names itself.
 */
export function until<T>(hub: RunningHub, predicate: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const first = predicate();
    if (first) return resolve(first);
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const stop = hub.core.onCommit(() => {
      const value = predicate();
      if (value) {
        stop();
        clearTimeout(timer);
        resolve(value);
      }
    });
  });
}

/** A promise with its resolve function, for waiting on callbacks. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}



/** Resolves with a work order once it reaches `state` in the hub (checked after every commit). */
export function untilOrder(hub: RunningHub, workflowId: string, workOrderId: string, state: WorkOrderState): Promise<WorkOrder> {
  return until(
    hub,
    () => {
      const order = hub.core.state.workflows.get(workflowId)?.workOrders[workOrderId];
      return order?.state === state && order;
    },
    `work order ${workOrderId} ${state}`,
  );
}
