import sortedBtree from 'sorted-btree';
import type { WorkOrder, WorkOrderState } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { PriorityQueue } from './priority-queue.ts';

// A CommonJS package with `exports.default`: Node gives an ES module the whole `exports`, whose
// `default` is the class; vitest's interop gives the class itself.
const BTree = ('default' in sortedBtree ? sortedBtree.default : sortedBtree) as typeof sortedBtree.default;
type BTree<K, V> = InstanceType<typeof sortedBtree.default<K, V>>;

/** What places an order in the catalog: when it was created, then its id. Neither ever changes. */
export type CatalogKey = Pick<WorkOrder, 'createdAt' | 'id'>;

/** Orders oldest first by (createdAt, id); ids compare as strings (UTF-16 code units). */
export function compareCatalogKeys(a: CatalogKey, b: CatalogKey): number {
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The orders a page is taken from: any state and task type unless given. */
export interface CatalogFilter {
  state?: WorkOrderState | undefined;
  taskType?: string | undefined;
}

/** One page of a catalog: the ids of the matching orders newest first, and how many match in all. */
export interface CatalogPage {
  total: number;
  ids: string[];
}

/** One sorted set and where the merge has got to in it. */
interface MergeHead {
  key: CatalogKey;
  rest: Iterator<[CatalogKey, undefined]>;
}

/**
 * One workflow's work orders, sorted per (task type, state) by (createdAt, id), and how many
 * data references it holds: what a view of the workflow needs without walking its orders. The
 * sets' keys are the orders themselves, compared by fields that never change.
 */
export class WorkflowCatalog {
  /** Task type → state → the orders in it. A set left empty is dropped, and so is a row. */
  private readonly sets = new Map<string, Map<WorkOrderState, BTree<CatalogKey, undefined>>>();
  dataCount = 0;

  constructor(
    /** The orders object the catalog was built from: another one means the document was replaced. */
    readonly orders: Record<string, WorkOrder>,
  ) {}

  /** Builds the catalog of a workflow from its document: O(n log n) in its orders. */
  static of(workflow: Workflow): WorkflowCatalog {
    const catalog = new WorkflowCatalog(workflow.workOrders);
    for (const id in workflow.workOrders) catalog.add(workflow.workOrders[id]!, workflow.workOrders[id]!.state);
    catalog.dataCount = Object.keys(workflow.data).length;
    return catalog;
  }

  /** Files an order under its task type and `state`. */
  add(order: WorkOrder, state: WorkOrderState): void {
    let row = this.sets.get(order.taskType);
    if (!row) this.sets.set(order.taskType, (row = new Map()));
    let set = row.get(state);
    if (!set) row.set(state, (set = new BTree<CatalogKey, undefined>(undefined, compareCatalogKeys)));
    set.set(order, undefined);
  }

  /** Takes an order out of its task type's `state` set. */
  remove(order: CatalogKey & Pick<WorkOrder, 'taskType'>, state: WorkOrderState): void {
    const row = this.sets.get(order.taskType);
    const set = row?.get(state);
    if (!set?.delete(order)) return;
    if (set.size > 0) return;
    row!.delete(state);
    // Only an undone creation empties a task type: orders never leave their workflow otherwise.
    if (row!.size === 0) this.sets.delete(order.taskType);
  }

  /** How many orders of each state each task type has (states with none left out). */
  countsByTaskType(): Map<string, Map<WorkOrderState, number>> {
    const counts = new Map<string, Map<WorkOrderState, number>>();
    for (const [taskType, row] of this.sets) counts.set(taskType, new Map([...row].map(([state, set]) => [state, set.size])));
    return counts;
  }

  /** The sets a filter covers. */
  private setsOf(filter: CatalogFilter): Array<BTree<CatalogKey, undefined>> {
    const rows = filter.taskType === undefined ? [...this.sets.values()] : this.sets.has(filter.taskType) ? [this.sets.get(filter.taskType)!] : [];
    const sets: Array<BTree<CatalogKey, undefined>> = [];
    for (const row of rows) {
      if (filter.state === undefined) sets.push(...row.values());
      else if (row.has(filter.state)) sets.push(row.get(filter.state)!);
    }
    return sets;
  }

  /**
   * Up to `limit` matching orders newest first, starting below `before` when given (an order's
   * key, which need not match the filter), and how many match in all. The sets the filter covers
   * are merged newest first, taking `limit` items: O(k + limit · log n) for k sets of n orders.
   */
  page(filter: CatalogFilter, limit: number, before?: CatalogKey): CatalogPage {
    const sets = this.setsOf(filter);
    let total = 0;
    const heads = new PriorityQueue<MergeHead>((a, b) => compareCatalogKeys(a.key, b.key) > 0);
    for (const set of sets) {
      total += set.size;
      // From the highest key at or below `before`, skipping `before` itself.
      const rest = before === undefined ? set.entriesReversed() : set.entriesReversed(before, undefined, true);
      const first = rest.next();
      if (!first.done) heads.push({ key: first.value[0], rest });
    }
    const ids: string[] = [];
    while (ids.length < limit) {
      const head = heads.pop();
      if (!head) break;
      ids.push(head.key.id);
      const next = head.rest.next();
      if (!next.done) heads.push({ key: next.value[0], rest: head.rest });
    }
    return { total, ids };
  }
}

/**
 * The catalogs of workflows that a view has asked for. A catalog is built at its workflow's first
 * view, not at start-up (a hub holding big workflows nobody watches pays nothing for them), and is
 * kept up to date from then on by the functions that create orders, move them between states
 * and register data; each change returns its undo for the command's transaction.
 */
export class WorkflowCatalogs {
  private readonly catalogs = new Map<string, WorkflowCatalog>();

  /** The catalog of a workflow, built now when there is none for this document. */
  of(workflow: Workflow): WorkflowCatalog {
    let catalog = this.catalogs.get(workflow.id);
    if (catalog?.orders !== workflow.workOrders) {
      catalog = WorkflowCatalog.of(workflow);
      this.catalogs.set(workflow.id, catalog);
    }
    return catalog;
  }

  /** Notes an order just created; returns its undo when a catalog changed. */
  added(order: WorkOrder): (() => void) | undefined {
    const catalog = this.catalogs.get(order.workflowId);
    if (!catalog) return undefined;
    const { state } = order;
    catalog.add(order, state);
    return () => catalog.remove(order, state);
  }

  /** Notes an order moving from one state to another; returns its undo when a catalog changed. */
  moved(order: WorkOrder, from: WorkOrderState, to: WorkOrderState): (() => void) | undefined {
    const catalog = this.catalogs.get(order.workflowId);
    if (!catalog) return undefined;
    catalog.remove(order, from);
    catalog.add(order, to);
    return () => {
      catalog.remove(order, to);
      catalog.add(order, from);
    };
  }

  /** Notes a data reference just registered in a workflow; returns its undo when a catalog changed. */
  dataAdded(workflowId: string): (() => void) | undefined {
    const catalog = this.catalogs.get(workflowId);
    if (!catalog) return undefined;
    catalog.dataCount++;
    return () => catalog.dataCount--;
  }

  /** Forgets the catalog of a workflow that left memory. */
  forget(workflowId: string): void {
    this.catalogs.delete(workflowId);
  }

  /** Forgets every catalog (a rebuild of the index): each is built again at its next view. */
  clear(): void {
    this.catalogs.clear();
  }
}
