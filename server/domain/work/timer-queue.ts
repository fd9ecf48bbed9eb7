import type { UndoLog } from './free-agents.ts';
import { PriorityQueue } from './priority-queue.ts';

/** A timer of an order, due `at` on the monotonic clock (Environment.monotonicNow). */
export interface Timed {
  at: number;
  workflowId: string;
  workOrderId: string;
  /** orderKey of its order. */
  key: string;
  /**
   * Where it is in its TimerQueue's heap, for taking it out; -1 when made. Set in the literal that
   * makes it: added later, it took a property store of its own (32 of ~230 bytes per timer).
   */
  slot: number;
}

const byTime = (a: Timed, b: Timed) => a.at < b.at;

/**
 * The timers of one kind (retry backoffs, overall timeouts, ...) in the order they are due, one
 * per order: the newest set for it. One set anew takes its order's previous one out, and an order
 * that ends takes its own out, in O(log size), so that the heap holds the unfinished orders'
 * timers, not every timer set within the longest one (an hour's overallMs at 5,000 orders/s held
 * 18 million). What comes out when due is still checked against its order by the sweep.
 */
export class TimerQueue<T extends Timed> {
  private readonly heap = new PriorityQueue<T>(byTime, (entry, index) => (entry.slot = index));
  /** The timer of each order that has one. */
  private readonly standing = new Map<string, T>();

  /** Entries held. */
  get size(): number {
    return this.heap.size;
  }

  /** Orders with a timer. */
  get live(): number {
    return this.standing.size;
  }

  /** The first entry due. */
  peek(): T | undefined {
    return this.heap.peek();
  }

  /** Sets an order's timer, taking its previous one out. `undo`: the command's (see take()). */
  push(entry: T, undo?: UndoLog): void {
    const previous = this.standing.get(entry.key);
    if (previous !== undefined) this.take(previous, undo);
    this.heap.push(entry);
    this.standing.set(entry.key, entry);
  }

  /** Removes and returns the first entry due. */
  pop(): T | undefined {
    const entry = this.heap.pop();
    if (entry === undefined) return undefined;
    if (this.standing.get(entry.key) === entry) this.standing.delete(entry.key);
    return entry;
  }

  /** The order of `key` ended: its timer is taken out. */
  end(key: string, undo?: UndoLog): void {
    const entry = this.standing.get(key);
    if (entry === undefined) return;
    this.standing.delete(key);
    this.take(entry, undo);
  }

  /**
   * Takes an entry out of the heap. A command undone is followed by a rebuild of the index
   * (WorkIndex.rebuild), which keeps the timers of orders it finds unfinished again as they were,
   * reading them from here: the entry goes back with the command's undo, for it to find.
   */
  private take(entry: T, undo: UndoLog | undefined): void {
    if (!this.heap.remove(entry, entry.slot)) return;
    undo?.onUndo(() => this.heap.push(entry));
  }
}
