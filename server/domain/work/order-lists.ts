import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { arrayIndexPlace, isArrayIndex } from '../machinery/key-order.ts';
import type { KeyList } from '../machinery/pins.ts';

/**
 * A workflow's order ids in the order `for…in` gives them: ids that are array indexes first,
 * ascending, then the others in creation order.
 */
export class OrderList {
  /** Ids that are array indexes, ascending. */
  private readonly indexed: string[];
  /** The other ids, in creation order, and the place of each among them. */
  private readonly named: string[];
  private readonly namedPlace: Map<string, number>;

  constructor(
    /** The orders object the ids were read from. */
    readonly orders: Record<string, WorkOrder>,
    /** How many orders the workflow's counts said it had when the list was built, plus those added since. */
    public counted: number,
  ) {
    const ids = Object.keys(orders);
    // Object.keys gives the array indexes first: the others start at the first id that is not one.
    let boundary = 0;
    while (boundary < ids.length && isArrayIndex(ids[boundary]!)) boundary++;
    this.indexed = ids.slice(0, boundary);
    this.named = boundary === 0 ? ids : ids.slice(boundary);
    this.namedPlace = new Map(this.named.map((id, place) => [id, place]));
  }

  /** How many ids the list holds. */
  get size(): number {
    return this.indexed.length + this.named.length;
  }

  /** The place of an order in the list, or undefined when it is not in it. */
  placeOf(orderId: string): number | undefined {
    if (!isArrayIndex(orderId)) {
      const place = this.namedPlace.get(orderId);
      return place === undefined ? undefined : this.indexed.length + place;
    }
    const place = indexedPlace(this.indexed, orderId);
    return this.indexed[place] === orderId ? place : undefined;
  }

  /** The id at a place of the list. */
  idAt(place: number): string | undefined {
    return place < this.indexed.length ? this.indexed[place] : this.named[place - this.indexed.length];
  }

  /**
   * The ids as they are now, kept so however the list grows: ids that are not array indexes are
   * only ever appended, so their prefix is shared, not copied (the others, rare, are copied).
   */
  snapshot(): KeyList {
    const indexed = this.indexed.slice();
    const named = this.named;
    const length = indexed.length + named.length;
    return { length, at: (place) => (place >= length ? undefined : place < indexed.length ? indexed[place] : named[place - indexed.length]) };
  }

  /** Adds a new order's id where `for…in` lists it; returns its undo, which is false when the list can no longer be kept. */
  add(orderId: string): () => boolean {
    this.counted++;
    if (isArrayIndex(orderId)) {
      this.indexed.splice(indexedPlace(this.indexed, orderId), 0, orderId);
      return () => {
        this.counted--;
        const place = indexedPlace(this.indexed, orderId);
        if (this.indexed[place] !== orderId) return false;
        this.indexed.splice(place, 1);
        return true;
      };
    }
    this.namedPlace.set(orderId, this.named.push(orderId) - 1);
    return () => {
      this.counted--;
      // Undone newest first; anything else and the list is built again when next needed.
      if (this.named.at(-1) !== orderId) return false;
      this.named.pop();
      this.namedPlace.delete(orderId);
      return true;
    };
  }
}

/** Where `id` (an array index) is in `indexed`, or where it would go. */
function indexedPlace(indexed: readonly string[], id: string): number {
  return arrayIndexPlace(indexed, id, (key) => key);
}

/**
 * The ids of each workflow's work orders in listing order, so that a page of orders starts at its
 * cursor and a big read lists them without Object.keys: enumerating the keys of a 100,000-order
 * workflow took 14–34 ms of the hub's loop each time. The lists are built with the index (at
 * start-up) and kept up to date as orders are added; one is built again whenever it may be out of
 * step (a rollback clears them all; a replaced document or a different count is noticed).
 */
export class OrderLists {
  private readonly lists = new Map<string, OrderList>();

  /** The kept list of a workflow's orders, built now when there is none that matches. */
  of(workflow: Workflow): OrderList {
    let list = this.lists.get(workflow.id);
    const counted = countOrders(workflow);
    if (!list || list.orders !== workflow.workOrders || list.counted !== counted) {
      list = new OrderList(workflow.workOrders, counted);
      this.lists.set(workflow.id, list);
    }
    return list;
  }

  /** Notes an order just added to a workflow; returns what undoes that, if anything needs undoing. */
  added(workflowId: string, orderId: string): (() => void) | undefined {
    const list = this.lists.get(workflowId);
    if (!list) return undefined;
    const undo = list.add(orderId);
    return () => {
      if (!undo()) this.lists.delete(workflowId);
    };
  }

  /** Forgets the list of one workflow (it holds the workflow's orders object). */
  forget(workflowId: string): void {
    this.lists.delete(workflowId);
  }

  /** Forgets every list (after a rollback). */
  clear(): void {
    this.lists.clear();
  }
}

/** How many work orders a workflow holds, from its counts: no walk over the orders. */
export function countOrders(workflow: Workflow): number {
  let count = 0;
  for (const state in workflow.workOrderCounts) count += workflow.workOrderCounts[state as WorkOrder['state']] ?? 0;
  return count;
}
