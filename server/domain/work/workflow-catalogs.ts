import type { WorkOrder, WorkOrderState } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { OrderLists } from './order-lists.ts';
import { WorkflowCatalog } from './workflow-catalog.ts';

/**
 * The catalogs of workflows that a view has asked for. A catalog is built at its workflow's first
 * view, not at start-up (a hub holding big workflows nobody watches pays nothing for them), and is
 * kept up to date from then on, while it is built too, by the functions that create orders, move
 * them between states and register data; each change returns its undo for the command's
 * transaction. A big workflow's catalog is built a step at a time by whoever asked for it
 * (`building`, then `WorkflowCatalog.buildStep`): the domain has no clock to slice it with.
 */
export class WorkflowCatalogs {
  private readonly catalogs = new Map<string, WorkflowCatalog>();

  /** `lists`: the index's lists of each workflow's order ids, which a build starts from. */
  constructor(private readonly lists?: OrderLists) {}

  /** The catalog of a workflow, built now (what is left of it, in one go) when it is not. */
  of(workflow: Workflow): WorkflowCatalog {
    const catalog = this.building(workflow);
    while (!catalog.buildStep(Infinity));
    return catalog;
  }

  /** The catalog kept for a workflow's document, built or not; an empty one is started when there is none. */
  building(workflow: Workflow): WorkflowCatalog {
    let catalog = this.catalogs.get(workflow.id);
    if (catalog?.orders !== workflow.workOrders) {
      const lists = this.lists;
      catalog = lists ? new WorkflowCatalog(workflow, () => lists.of(workflow).snapshot()) : new WorkflowCatalog(workflow);
      this.catalogs.set(workflow.id, catalog);
    }
    return catalog;
  }

  /** Whether a catalog is still the one kept for its workflow: a rebuild, a forgotten workflow or a replaced document drops it. */
  holds(catalog: WorkflowCatalog): boolean {
    return this.catalogs.get(catalog.workflowId) === catalog;
  }

  /** Notes an order just created; returns its undo when a catalog changed. */
  added(order: WorkOrder): (() => void) | undefined {
    return this.catalogs.get(order.workflowId)?.created(order);
  }

  /** Notes an order moving from one state to another; returns its undo when there is a catalog. */
  moved(order: WorkOrder, from: WorkOrderState, to: WorkOrderState): (() => void) | undefined {
    return this.catalogs.get(order.workflowId)?.moved(order, from, to);
  }

  /** Notes a data reference just registered in a workflow; returns its undo when there is a catalog. */
  dataAdded(workflowId: string): (() => void) | undefined {
    return this.catalogs.get(workflowId)?.dataAdded();
  }

  /** Forgets the catalog of a workflow that left memory. */
  forget(workflowId: string): void {
    this.catalogs.delete(workflowId);
  }

  /** Forgets every catalog, built or being built (a rebuild of the index): each is built again when next asked for. */
  clear(): void {
    this.catalogs.clear();
  }
}
