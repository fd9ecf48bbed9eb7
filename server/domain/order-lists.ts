import type { WorkOrder } from '../../shared/schemas/work-order.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';

/** A workflow's order ids in listing order, the place of each, and the orders object they came from. */
export interface OrderList {
  of: Record<string, WorkOrder>;
  ids: string[];
  at: Map<string, number>;
}

/** JavaScript lists keys that are array indexes first, in ascending order, whenever they were added. */
function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 2 ** 32 - 1;
}

const nothingToUndo = () => undefined;

/**
 * The ids of each listed workflow's work orders in the order `for…in` gives them (creation
 * order), so that a page of orders starts at its cursor: enumerating the keys of a 100,000-order
 * workflow for every page took 23–34 ms of the hub's loop each. A list is built on its workflow's
 * first listing and kept up to date as orders are added; it is built again whenever it may be
 * out of step (a rollback clears them all, a replaced document or a count that differs is noticed).
 */
export class OrderLists {
  private readonly lists = new Map<string, OrderList>();

  /** The kept list of a workflow's orders, built now when there is none that matches. */
  of(workflow: Workflow): OrderList {
    let list = this.lists.get(workflow.id);
    if (!list || list.of !== workflow.workOrders || list.ids.length !== countOrders(workflow)) {
      const ids = Object.keys(workflow.workOrders);
      list = { of: workflow.workOrders, ids, at: new Map(ids.map((id, place) => [id, place])) };
      this.lists.set(workflow.id, list);
    }
    return list;
  }

  /** Notes an order just added to a workflow; returns what undoes that. */
  added(workflowId: string, orderId: string): () => void {
    const list = this.lists.get(workflowId);
    if (!list) return nothingToUndo;
    // Such an id is not listed last: build the list again when it is next needed.
    if (isArrayIndex(orderId)) {
      this.lists.delete(workflowId);
      return nothingToUndo;
    }
    list.at.set(orderId, list.ids.push(orderId) - 1);
    return () => {
      list.ids.pop();
      list.at.delete(orderId);
    };
  }

  /** Forgets every list (after a rollback). */
  clear(): void {
    this.lists.clear();
  }
}

function countOrders(workflow: Workflow): number {
  let count = 0;
  for (const state in workflow.workOrderCounts) count += workflow.workOrderCounts[state as WorkOrder['state']] ?? 0;
  return count;
}
