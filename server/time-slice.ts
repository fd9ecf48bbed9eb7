import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * How long work done in slices may hold the event loop at a time (ms). Each slice delays every
 * request that arrives meanwhile by as much; 3 ms slices kept big-read acks at a p99 of 35 ms,
 * 1 ms ones at 24 ms, in the big-workflow scenario.
 */
const SLICE_MS = 1;

/**
 * Big work (serialising a document, building a catalog, reading an archived file) in slices of
 * SLICE_MS: the work asks `spent` every few items, and once it is, awaits `next()` (the next turn
 * of the event loop, after pending I/O) before going on.
 */
export class TimeSlice {
  private start = performance.now();

  /** Whether this slice's time is used up. */
  get spent(): boolean {
    return performance.now() - this.start >= SLICE_MS;
  }

  /** Waits for the next turn of the event loop, and starts a new slice there. */
  async next(): Promise<void> {
    await nextTurn();
    this.start = performance.now();
  }
}
