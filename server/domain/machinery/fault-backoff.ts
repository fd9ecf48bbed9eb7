/** The first wait before something whose change failed is tried again (ms, monotonic clock); it doubles up to FAULT_RETRY_MAX_MS. */
export const FAULT_RETRY_MS = 1_000;
export const FAULT_RETRY_MAX_MS = 5 * 60_000;

/** A failure: how often in a row, and when it may be tried again. */
interface Fault {
  count: number;
  retryAt: number;
}

/**
 * Things whose change failed unexpectedly (a bug, a file that cannot be written), by a key naming
 * each: a sweep's timer, a workflow to archive. Each is put off with a growing wait, so that one
 * bad order or workflow does not stop the others behind it, nor fill the log at every pass.
 * Runtime only: a restart tries them all again.
 */
export class FaultBackoff {
  private readonly faults = new Map<string, Fault>();

  /** How many are put off now. */
  get size(): number {
    return this.faults.size;
  }

  /** Whether `key` may be tried at `monotonicNow` (it never failed, or its wait is over). */
  mayRun(key: string, monotonicNow: number): boolean {
    const fault = this.faults.get(key);
    return fault === undefined || fault.retryAt <= monotonicNow;
  }

  /** Notes a failure of `key`; returns how often it failed in a row and how long it is put off. */
  failed(key: string, monotonicNow: number): { count: number; retryInMs: number } {
    const count = (this.faults.get(key)?.count ?? 0) + 1;
    const retryInMs = Math.min(FAULT_RETRY_MS * 2 ** (count - 1), FAULT_RETRY_MAX_MS);
    this.faults.set(key, { count, retryAt: monotonicNow + retryInMs });
    return { count, retryInMs };
  }

  /** `key` ran through (or is gone): it is no longer put off. */
  cleared(key: string): void {
    if (this.faults.size > 0) this.faults.delete(key);
  }
}
