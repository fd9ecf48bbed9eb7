import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { Actor } from '../machinery/actor.ts';
import { requireOpen, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { versionOf } from '../machinery/state.ts';
import { touch } from '../workflows/workflows.ts';
import { dependencyVerdict, queueOrder, release, requireOrder } from './work-orders.ts';

// workOrder.retry: the operator's way out for an order that failed for good, or that every agent
// able to take it declined (or let lapse). It touches the named order only: dependents that failed
// because of it are retried one by one, after it.

/**
 * Why a failed order cannot go back now, or undefined: a dependency that failed or was cancelled
 * (unless it continues on dependency failure), or, once its dependencies are done, an input that
 * does not exist. Otherwise release() would fail it again at once.
 */
function retryRefusal(workflow: Workflow, order: WorkOrder): HubError | undefined {
  const decision = dependencyVerdict(workflow, order);
  if (decision.verdict === 'fail') {
    const { id, state } = decision.because;
    const hint = state === 'failed' ? `retry ${id} first` : `a cancelled order cannot run again; create a new order instead`;
    return new HubError('CONFLICT', `work order ${order.id} cannot be retried: its dependency ${id} is ${state} (${hint})`);
  }
  if (decision.verdict === 'wait') return undefined;
  const absent = order.inputs.find((id) => !Object.hasOwn(workflow.data, id));
  if (absent !== undefined) return new HubError('NOT_FOUND', `input data reference ${absent} of ${order.id} does not exist in workflow ${workflow.id}`);
  return undefined;
}

/**
 * A failed order goes back (queued, or blocked while a dependency is unfinished) with a fresh
 * budget of maxAttempts attempts and a fresh overall timeout, waiting from now as a new order does;
 * its history, attempt numbers and checkpoint are kept, its declines forgotten.
 */
function requeueFailed(t: CommandContext, workflow: Workflow, order: WorkOrder): void {
  const refusal = retryRefusal(workflow, order);
  if (refusal) throw refusal;
  // Null: the overall timeout runs again from when it is queued, and it waits from then, as a new
  // order does (kept, a day-old order would be aged past every priority and jump the queue).
  t.tx.assign(workflow.id, ['workOrders', order.id], { endedAt: null, firstQueuedAt: null, queuedAt: null, declinedBy: [], retried: { at: t.ctx.now, attempts: order.attempts } });
  release(t, workflow, order);
}

/**
 * A queued order is offered again to the agents that declined it or let its offer lapse, and now:
 * a retry's backoff it waits out ends. One held back by neither is left as it is (returns false).
 */
export function offerAgain(t: CommandContext, order: WorkOrder): boolean {
  if (order.declinedBy.length === 0 && order.notBefore === null) return false;
  t.tx.set(order.workflowId, ['workOrders', order.id, 'declinedBy'], []);
  // Filed anew: its queue entry holds the declines it was queued with.
  queueOrder(t, order);
  return true;
}

/** workOrder.retry: a failed order back in the queue, or a queued one offered again; anything else is INVALID_TRANSITION. */
export function retryOrder(t: CommandContext, input: ParsedRequestOf<'control', 'workOrder.retry'>, actor: Actor) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  requireOpen(workflow, 'retry work orders');
  const order = requireOrder(workflow, input.workOrderId);
  const was = order.state;
  if (was === 'failed') requeueFailed(t, workflow, order);
  else if (was !== 'queued') throw new HubError('INVALID_TRANSITION', `work order ${order.id} is ${was}: only a failed or a queued order can be retried`);
  else if (!offerAgain(t, order)) return { version: versionOf(t.state, workflow.id), item: order };
  touch(t, workflow.id);
  t.tx.effect({ type: 'order.requeued', workflowId: workflow.id, workOrderId: order.id, was, attempts: order.attempts, by: actor.name });
  return { version: versionOf(t.state, workflow.id), item: order };
}
