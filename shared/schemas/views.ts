import * as z from 'zod';
import { Id, keyName } from './common.ts';
import { WorkflowSummary } from './summary.ts';
import { WorkOrder, WorkOrderState } from './work-order.ts';
import { Workflow } from './workflow.ts';

/** How many orders an orders view holds unless told. */
export const DEFAULT_ORDERS_LIMIT = 50;

/** The summary view of a workflow: everything but its work orders, data and lineage, with counts instead. */
export const SummaryViewSpec = z.strictObject({ kind: z.literal('summary') });

/** A bounded list of a workflow's work orders, newest first by (createdAt, id). */
export const OrdersViewSpec = z.strictObject({
  kind: z.literal('orders'),
  /** Only orders in this state. */
  state: WorkOrderState.optional(),
  /** Only orders of this task type. */
  taskType: keyName(100).optional(),
  /** At most this many orders. */
  limit: z.number().int().min(1).max(200).default(DEFAULT_ORDERS_LIMIT),
  /** The page of orders older than this one (an order of the workflow, whatever its state and type). */
  before: Id.optional(),
});

/** Which view of a workflow to follow instead of the whole document. */
export const ViewSpec = z.discriminatedUnion('kind', [SummaryViewSpec, OrdersViewSpec]);
export type ViewSpec = z.output<typeof ViewSpec>;
export type ViewSpecInput = z.input<typeof ViewSpec>;

/**
 * The name of a view, `<workflowId>/summary` or `<workflowId>/orders?…`: what a subscription's
 * `doc`, its `patch` messages and `resync` notices carry, and what `unsubscribe` takes. A workflow
 * id never holds a `/`, so a name with one is a view's.
 */
export const ViewName = z
  .string()
  .max(2048)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\/(?:summary|orders(?:\?[A-Za-z0-9_.~%&=!*'()-]*)?)$/, 'a view name is <workflowId>/summary or <workflowId>/orders?…');

/** Whether a followed name is a view's (rather than a document's). */
export function isViewName(name: string): boolean {
  return name.includes('/');
}

/**
 * The canonical name of a view of a workflow: parameters in a fixed order (state, taskType,
 * limit, before), defaults left out, values percent-encoded, so equal views share one name.
 */
export function viewName(workflowId: string, view: ViewSpecInput): string {
  if (view.kind === 'summary') return `${workflowId}/summary`;
  const query: string[] = [];
  if (view.state !== undefined) query.push(`state=${view.state}`);
  if (view.taskType !== undefined) query.push(`taskType=${encodeURIComponent(view.taskType)}`);
  if (view.limit !== undefined && view.limit !== DEFAULT_ORDERS_LIMIT) query.push(`limit=${view.limit}`);
  if (view.before !== undefined) query.push(`before=${encodeURIComponent(view.before)}`);
  return query.length === 0 ? `${workflowId}/orders` : `${workflowId}/orders?${query.join('&')}`;
}

const Count = z.number().int().nonnegative();

/** Orders in each state (all eight, zeros included), as a workflow's `workOrderCounts`. */
const OrderCounts = z.record(WorkOrderState, Count);

/**
 * The value of a summary view: a workflow without its work orders, data and lineage. Objects are
 * keyed by id (or name), so a patch touches only what changed. Later fields may be added beside
 * the counts; a reader ignores what it does not know.
 */
export const SummaryView = Workflow.pick({
  id: true,
  userQuery: true,
  status: true,
  failureReason: true,
  createdAt: true,
  updatedAt: true,
  startedAt: true,
  endedAt: true,
  progress: true,
  stages: true,
  objectives: true,
  // The KPIs with their recorded history.
  kpis: true,
}).extend({
  /** Where `progress` comes from, and the orders' share beside it (as in `WorkflowSummary`). */
  progressFrom: WorkflowSummary.shape.progressFrom,
  orderProgress: WorkflowSummary.shape.orderProgress,
  /** How many of its queued orders no agent that takes work can do (marked `waiting`). */
  unservable: Count,
  /** Set while it is paused (workflow.pause), as in `WorkflowSummary`. */
  paused: WorkflowSummary.shape.paused,
  /** Steps by status, and the summed duration of finished ones (as in `WorkflowSummary`). */
  steps: WorkflowSummary.shape.steps,
  workOrderCounts: OrderCounts,
  /** Orders by task type, then by state (all eight, zeros included). */
  workOrderCountsByTaskType: z.record(z.string(), OrderCounts),
  /** How many agents have worked on the workflow. */
  agentCount: Count,
  /** How many data references the workflow holds. */
  dataCount: Count,
});
export type SummaryView = z.infer<typeof SummaryView>;

/**
 * The value of an orders view: the matching orders newest first by (createdAt, id), at most
 * `limit` of them and older than `before` when given. `ids` gives the order, `orders` the orders
 * by id (so a change to one order patches that order only); `total` counts every order matching
 * the state and task type, whatever the limit and cursor.
 */
export const OrdersView = z.object({
  total: Count,
  ids: z.array(Id),
  orders: z.record(z.string(), WorkOrder),
});
export type OrdersView = z.infer<typeof OrdersView>;
