import sortedBtree from 'sorted-btree';
import type { WorkOrder, WorkOrderState } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { KeyList } from '../machinery/pins.ts';
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

/** Where a catalog being built stands. */
interface Build {
  /** The workflow's order ids, taken at the first step (undefined until then). */
  ids: KeyList | undefined;
  /** How many of `ids` have been filed. */
  next: number;
  /** Whether `dataCount` has been counted from the document (until then a registration changes nothing). */
  dataCounted: boolean;
}

/**
 * One workflow's work orders, sorted per (task type, state) by (createdAt, id), and how many
 * data references it holds: what a view of the workflow needs without walking its orders. The
 * sets' keys are the orders themselves, compared by fields that never change.
 *
 * A catalog is built a step at a time (`buildStep`) while the workflow goes on changing. That
 * needs no record of which orders are filed: every order the catalog holds is held once, under
 * its state now. A creation files the order at once; a state change moves it, filing it if it
 * was not (taking it out of a set it is not in changes nothing); an undo moves it back or takes
 * it out. When an order's turn in the build comes it is filed under its state then, which for
 * one filed already is the set it is in: a set holds a key once. Data references are counted,
 * not filed, so a registration changes the count only once the count is taken, and so does its
 * undo, whenever it runs. Pages and counts describe the whole workflow once `built`.
 */
export class WorkflowCatalog {
  /** Task type → state → the orders in it. A set left empty is dropped, and so is a row. */
  private readonly sets = new Map<string, Map<WorkOrderState, BTree<CatalogKey, undefined>>>();
  dataCount = 0;
  /** Undefined once built. */
  private build: Build | undefined = { ids: undefined, next: 0, dataCounted: false };
  readonly workflowId: string;
  /** The orders object the catalog is built from: another one means the document was replaced. */
  readonly orders: Record<string, WorkOrder>;
  private readonly data: Workflow['data'];

  /**
   * An empty catalog of a workflow, to be built with `buildStep`; `listIds` gives its order ids
   * (the index keeps them listed: Object.keys of 100,000 held the loop 17-19 ms).
   */
  constructor(
    workflow: Workflow,
    private readonly listIds: () => KeyList = () => Object.keys(workflow.workOrders),
  ) {
    this.workflowId = workflow.id;
    this.orders = workflow.workOrders;
    this.data = workflow.data;
  }

  /** Builds the catalog of a workflow from its document, in one go: O(n log n) in its orders. */
  static of(workflow: Workflow): WorkflowCatalog {
    const catalog = new WorkflowCatalog(workflow);
    while (!catalog.buildStep(Infinity));
    return catalog;
  }

  /** Whether every order of the workflow is filed and its data counted. */
  get built(): boolean {
    return this.build === undefined;
  }

  /**
   * One step of the build: taking the ids of the workflow's orders, counting its data references,
   * or filing up to `maxOrders` orders (O(maxOrders · log n)). True when the catalog is built.
   */
  buildStep(maxOrders: number): boolean {
    const build = this.build;
    if (!build) return true;
    if (!build.ids) {
      build.ids = this.listIds();
      return false;
    }
    if (!build.dataCounted) {
      this.dataCount = Object.keys(this.data).length;
      build.dataCounted = true;
      return false;
    }
    const ids = build.ids;
    const end = Math.min(ids.length, build.next + maxOrders);
    for (; build.next < end; build.next++) {
      const id = ids.at(build.next)!;
      // Its creation was undone since the ids were taken.
      if (!Object.hasOwn(this.orders, id)) continue;
      const order = this.orders[id]!;
      this.add(order, order.state);
    }
    if (build.next < ids.length) return false;
    this.build = undefined;
    return true;
  }

  /** Whether `dataCount` holds the workflow's data references (it does once built). */
  private get dataCounted(): boolean {
    return this.build === undefined || this.build.dataCounted;
  }

  /** Files an order just created, with its state; returns the undo. */
  created(order: WorkOrder): () => void {
    const { state } = order;
    this.add(order, state);
    return () => this.remove(order, state);
  }

  /** Moves an order from one state to another (filing it, if it was not yet); returns the undo. */
  moved(order: WorkOrder, from: WorkOrderState, to: WorkOrderState): () => void {
    this.remove(order, from);
    this.add(order, to);
    return () => {
      this.remove(order, to);
      this.add(order, from);
    };
  }

  /** Counts a data reference just registered, if the data are counted; returns the undo, which uncounts it if they are by then. */
  dataAdded(): () => void {
    if (this.dataCounted) this.dataCount++;
    return () => {
      if (this.dataCounted) this.dataCount--;
    };
  }

  /** Files an order under its task type and `state`. */
  private add(order: WorkOrder, state: WorkOrderState): void {
    let row = this.sets.get(order.taskType);
    if (!row) this.sets.set(order.taskType, (row = new Map()));
    let set = row.get(state);
    if (!set) row.set(state, (set = new BTree<CatalogKey, undefined>(undefined, compareCatalogKeys)));
    set.set(order, undefined);
  }

  /** Takes an order out of its task type's `state` set. */
  private remove(order: CatalogKey & Pick<WorkOrder, 'taskType'>, state: WorkOrderState): void {
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
