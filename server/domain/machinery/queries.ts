import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import type { WorkflowHeader } from '../../../shared/schemas/workflow.ts';
import { requireEntity, requireWorkflow } from './context.ts';
import { versionOf, type HubState } from './state.ts';
import { summarize } from '../workflows/summary.ts';

/** Workflows in creation order, filtered by status, a page at a time; the cursor is the last id seen. */
export function listWorkflows(
  state: HubState,
  input: ParsedRequestOf<'control', 'workflow.list'>,
  visible: (workflowId: string) => boolean = () => true,
): ReplyOf<'control', 'workflow.list'> {
  // A cursor this reader may not see is as unknown as one that does not exist.
  if (input.cursor !== undefined && (!state.workflows.has(input.cursor) || !visible(input.cursor))) throw new HubError('VALIDATION', `unknown cursor ${input.cursor}`);
  const items: WorkflowHeader[] = [];
  let passedCursor = input.cursor === undefined;
  let more = false;
  for (const workflow of state.workflows.values()) {
    if (!passedCursor) {
      passedCursor = workflow.id === input.cursor;
      continue;
    }
    if ((input.status && workflow.status !== input.status) || !visible(workflow.id)) continue;
    if (items.length === input.limit) {
      more = true;
      break;
    }
    const { id, userQuery, status, progress, createdAt, updatedAt, startedAt, endedAt, workOrderCounts } = workflow;
    items.push({ id, userQuery, status, progress, createdAt, updatedAt, startedAt, endedAt, workOrderCounts });
  }
  return { items, nextCursor: more ? items[items.length - 1]!.id : null };
}

/** One workflow's whole state and version. */
export function getWorkflow(state: HubState, workflowId: string): ReplyOf<'control', 'workflow.get'> {
  return { version: versionOf(state, workflowId), workflow: requireWorkflow(state, workflowId) };
}

/** One workflow's summary at the current version. */
export function workflowSummary(state: HubState, workflowId: string, now: number): ReplyOf<'control', 'workflow.summary'> {
  return summarize(requireWorkflow(state, workflowId), versionOf(state, workflowId), now);
}

/** One work order and its workflow's version. */
export function getWorkOrder(state: HubState, workflowId: string, workOrderId: string): ReplyOf<'control', 'workOrder.get'> {
  const workflow = requireWorkflow(state, workflowId);
  return { version: versionOf(state, workflowId), item: requireEntity(workflow.workOrders, workOrderId, 'work order', workflowId) };
}

/**
 * A workflow's work orders in creation order, optionally by state; the cursor is the last id seen.
 * The list of the workflow's order ids that paging reads is built here on first use, then kept.
 */
export function listWorkOrders(state: HubState, input: ParsedRequestOf<'control', 'workOrder.list'>): ReplyOf<'control', 'workOrder.list'> {
  const workflow = requireWorkflow(state, input.workflowId);
  const list = state.work.orderLists.of(workflow);
  let from = 0;
  if (input.cursor !== undefined) {
    const place = list.placeOf(input.cursor);
    if (place === undefined) throw new HubError('VALIDATION', `unknown cursor ${input.cursor}`);
    from = place + 1;
  }
  const items = [];
  let more = false;
  for (let place = from; place < list.size; place++) {
    const order = workflow.workOrders[list.idAt(place)!]!;
    if (input.state && order.state !== input.state) continue;
    if (items.length === input.limit) {
      more = true;
      break;
    }
    items.push(order);
  }
  return { items, nextCursor: more ? items[items.length - 1]!.id : null };
}
