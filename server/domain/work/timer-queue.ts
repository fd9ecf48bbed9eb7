import type { UndoLog } from './free-agents.ts';
import { PriorityQueue } from './priority-queue.ts';

/** A timer of an order, due `at` on the monotonic clock (Environment.monotonicNow). */
export interface Timed {
  at: number;
  workflowId: string;
  workOrderId: string;
  /** orderKey of its order. */
  key: string;
}

/** Dead entries a queue may hold at least before it drops them: a handful of orders does not drop them at every end. */
const DEAD_ALLOWED = 64;

const byTime = (a: Timed, b: Timed) => a.at < b.at;

/**
 * The timers of one kind (retry backoffs, overall timeouts, ...) in the order they are due, at
 * most one standing per order: the newest set for it. One set anew replaces the order's previous
 * one, and an order that ended leaves its own; both are left in the heap (finding them costs a
 * walk) but counted, and once they outnumber the standing ones (and DEAD_ALLOWED) the heap keeps
 * only those: memory follows the orders with a timer, not the throughput over the longest timer,
 * at O(1) amortised per timer. Taking out an entry that no longer stands still hands it over (the
 * sweep checks each against its order), so a drop changes nothing but when the heap lets it go.
 */
export class TimerQueue<T extends Timed> {
  private readonly heap = new PriorityQueue<T>(byTime);
  /** The standing timer of each order that has one. */
  private readonly standing = new Map<string, T>();
  /** Entries in the heap that no longer stand. */
  private dead = 0;

  /** Entries held, standing or not. */
  get size(): number {
    return this.heap.size;
  }

  /** Entries held that stand for their order. */
  get live(): number {
    return this.standing.size;
  }

  /** The first entry due, standing or not. */
  peek(): T | undefined {
    return this.heap.peek();
  }

  /** Sets an order's timer, replacing its previous one. `undo`: the command's, should dropping entries need undoing. */
  push(entry: T, undo?: UndoLog): void {
    this.heap.push(entry);
    const previous = this.standing.get(entry.key);
    this.standing.set(entry.key, entry);
    if (previous !== undefined) this.died(undo);
  }

  /** Removes and returns the first entry due. */
  pop(): T | undefined {
    const entry = this.heap.pop();
    if (entry === undefined) return undefined;
    if (this.standing.get(entry.key) === entry) this.standing.delete(entry.key);
    else this.dead--;
    return entry;
  }

  /** The order of `key` ended: its timer no longer stands. */
  end(key: string, undo?: UndoLog): void {
    if (this.standing.delete(key)) this.died(undo);
  }

  /**
   * Counts an entry that no longer stands, and drops them all once they outnumber the standing
   * ones. A command undone is followed by a rebuild of the index (WorkIndex.rebuild), which keeps
   * the timers of orders it finds unfinished again as they were, reading them from here: the drop
   * is undone with the command, so that it finds them.
   */
  private died(undo: UndoLog | undefined): void {
    if (++this.dead <= Math.max(this.standing.size, DEAD_ALLOWED)) return;
    const dropped = this.heap.retain((entry) => this.standing.get(entry.key) === entry);
    this.dead = 0;
    undo?.onUndo(() => {
      for (const entry of dropped) this.heap.push(entry);
      this.dead += dropped.length;
    });
  }
}
