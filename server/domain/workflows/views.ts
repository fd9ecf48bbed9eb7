import { HubError } from '../../../shared/errors.ts';
import type { OrdersView, SummaryView, ViewSpec } from '../../../shared/schemas/views.ts';
import { WorkOrderState } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { requireWorkflow } from '../machinery/context.ts';
import type { HubState } from '../machinery/state.ts';
import type { WorkflowCatalog } from '../work/workflow-catalog.ts';
import { orderProgressOf, progressSource } from './order-progress.ts';

type OrdersViewSpec = Extract<ViewSpec, { kind: 'orders' }>;
type OrderCounts = SummaryView['workOrderCounts'];

/** Every state at zero: rows of counts list all eight, as a workflow's `workOrderCounts` does. */
function zeroCounts(): OrderCounts {
  return Object.fromEntries(WorkOrderState.options.map((state) => [state, 0])) as OrderCounts;
}

/**
 * The summary view of a workflow. Costs its stages, steps, objectives, KPIs and agents, plus
 * its task types × states from the catalog: never its orders or data. Its objects are the
 * state's own, which change in place: copy the value before keeping it.
 */
export function summaryView(workflow: Workflow, catalog: WorkflowCatalog): SummaryView {
  const steps = { total: 0, pending: 0, running: 0, completed: 0, failed: 0, totalDurationMs: 0 };
  for (const id in workflow.steps) {
    const step = workflow.steps[id]!;
    steps.total++;
    steps[step.status]++;
    steps.totalDurationMs += step.durationMs ?? 0;
  }
  const byTaskType: Record<string, OrderCounts> = {};
  const counts = catalog.countsByTaskType();
  // Sorted: the value depends on the document only, not on the order orders were filed in.
  for (const taskType of [...counts.keys()].sort()) {
    const row = zeroCounts();
    for (const [state, count] of counts.get(taskType)!) row[state] = count;
    byTaskType[taskType] = row;
  }
  return {
    id: workflow.id,
    userQuery: workflow.userQuery,
    status: workflow.status,
    failureReason: workflow.failureReason,
    createdAt: workflow.createdAt,
    updatedAt: workflow.updatedAt,
    startedAt: workflow.startedAt,
    endedAt: workflow.endedAt,
    progress: workflow.progress,
    progressFrom: progressSource(workflow),
    orderProgress: orderProgressOf(workflow),
    unservable: workflow.unservable ?? 0,
    paused: workflow.paused ?? null,
    stages: workflow.stages,
    objectives: workflow.objectives,
    kpis: workflow.kpis,
    steps,
    workOrderCounts: { ...zeroCounts(), ...workflow.workOrderCounts },
    workOrderCountsByTaskType: byTaskType,
    agentCount: Object.keys(workflow.agents).length,
    dataCount: catalog.dataCount,
  };
}

/**
 * The orders view of a workflow: the matching orders newest first by (createdAt, id), from the
 * catalog in O(limit · log n). A `before` that names no order of the workflow is VALIDATION. The
 * orders are the state's own: copy the value before keeping it.
 */
export function ordersView(workflow: Workflow, catalog: WorkflowCatalog, view: OrdersViewSpec): OrdersView {
  let before: Workflow['workOrders'][string] | undefined;
  if (view.before !== undefined) {
    before = Object.hasOwn(workflow.workOrders, view.before) ? workflow.workOrders[view.before] : undefined;
    if (!before) throw new HubError('VALIDATION', `before: ${view.before} is not a work order of workflow ${workflow.id}`);
  }
  const { total, ids } = catalog.page({ state: view.state, taskType: view.taskType }, view.limit, before);
  const orders: OrdersView['orders'] = {};
  for (const id of ids) orders[id] = workflow.workOrders[id]!;
  return { total, ids, orders };
}

/** The value of a view of one workflow, from a document and its catalog. */
export function viewOf(workflow: Workflow, catalog: WorkflowCatalog, view: ViewSpec): SummaryView | OrdersView {
  return view.kind === 'summary' ? summaryView(workflow, catalog) : ordersView(workflow, catalog, view);
}

/** The value of a view of a workflow of `state` (NOT_FOUND when it holds none), its catalog built if need be. */
export function workflowView(state: HubState, workflowId: string, view: ViewSpec): SummaryView | OrdersView {
  const workflow = requireWorkflow(state, workflowId);
  return viewOf(workflow, state.work.catalogs.of(workflow), view);
}
