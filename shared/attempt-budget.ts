import type { WorkOrder } from './schemas/work-order.ts';

/**
 * The number of the last attempt an order may start: maxAttempts, counted after its last retry
 * (workOrder.retry). Shown beside the attempt number: "4 / 3" read as over budget.
 */
export function lastAttempt(order: Pick<WorkOrder, 'maxAttempts' | 'retried'>): number {
  return order.maxAttempts + (order.retried?.attempts ?? 0);
}
