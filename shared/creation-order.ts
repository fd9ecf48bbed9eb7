import { compareCreation } from './schemas/workflow.ts';

/** Something workflow.list orders: by creation time, then id. */
export interface Created {
  id: string;
  createdAt: number;
}

/**
 * Items kept in the order of workflow.list (compareCreation), with a lookup by id: the live
 * workflows and each archive's headers, so that a list merges the two by one key that never
 * changes. A new one goes in by binary search (it was usually created last, so it lands at the end).
 */
export class CreationOrder<T extends Created> {
  private readonly byId = new Map<string, T>();
  private readonly sorted: T[] = [];

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): T | undefined {
    return this.byId.get(id);
  }

  /** Every item, in list order. */
  all(): readonly T[] {
    return this.sorted;
  }

  /** Adds an item, replacing one with the same id. */
  put(item: T): void {
    this.remove(item.id);
    this.byId.set(item.id, item);
    const last = this.sorted[this.sorted.length - 1];
    if (!last || compareCreation(last.createdAt, last.id, item.createdAt, item.id) < 0) this.sorted.push(item);
    else this.sorted.splice(this.after(item.createdAt, item.id), 0, item);
  }

  /** Drops the item of this id, if any. */
  remove(id: string): void {
    const item = this.byId.get(id);
    if (!item) return;
    this.byId.delete(id);
    this.sorted.splice(this.after(item.createdAt, id) - 1, 1);
  }

  /** Drops items (one pass over the list, whatever their number). */
  delete(ids: readonly string[]): void {
    const gone = new Set(ids.filter((id) => this.byId.delete(id)));
    if (gone.size === 0) return;
    let kept = 0;
    for (const item of this.sorted) if (!gone.has(item.id)) this.sorted[kept++] = item;
    this.sorted.length = kept;
  }

  /** The place of the first item after (createdAt, id) in list order. */
  after(createdAt: number, id: string): number {
    let low = 0;
    let high = this.sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const other = this.sorted[middle]!;
      if (compareCreation(other.createdAt, other.id, createdAt, id) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
