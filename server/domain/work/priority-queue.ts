/** A binary heap: `before(a, b)` is true when a should come out first. */
export class PriorityQueue<T> {
  private readonly items: T[] = [];

  /** `placed(item, index)`, when given, is told where each item is put, for remove() (TimerQueue). */
  constructor(
    private readonly before: (a: T, b: T) => boolean,
    private readonly placed?: (item: T, index: number) => void,
  ) {}

  get size(): number {
    return this.items.length;
  }

  /** Every item, in no particular order. */
  values(): IterableIterator<T> {
    return this.items.values();
  }

  /** The first item without removing it. */
  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    this.placed?.(item, items.length - 1);
    this.siftUp(items.length - 1);
  }

  /** Removes and returns the first item. */
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      this.placed?.(last, 0);
      this.siftDown(0);
    }
    return top;
  }

  /** Removes `item` if it is at `index` (where `placed` last put it); O(log size). */
  remove(item: T, index: number): boolean {
    const items = this.items;
    if (items[index] !== item) return false;
    const last = items.pop()!;
    if (index < items.length) {
      items[index] = last;
      this.placed?.(last, index);
      this.siftDown(index);
      this.siftUp(index);
    }
    return true;
  }

  private siftUp(i: number): void {
    const items = this.items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const items = this.items;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < items.length && this.before(items[left]!, items[best]!)) best = left;
      if (right < items.length && this.before(items[right]!, items[best]!)) best = right;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
  }

  private swap(i: number, j: number): void {
    const items = this.items;
    const a = items[i]!;
    const b = items[j]!;
    items[i] = b;
    items[j] = a;
    if (this.placed) {
      this.placed(b, i);
      this.placed(a, j);
    }
  }
}
