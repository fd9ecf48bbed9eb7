/**
 * A load made once and shared by every caller that waits for it. A failure is seen by those
 * waiting, and the next call starts the load again.
 */
export class SharedLoad {
  private pending: Promise<void> | undefined;

  /** Whether a load is under way or has succeeded. */
  get started(): boolean {
    return this.pending !== undefined;
  }

  /** The load in progress or done; `start` begins one when there is none (or the last one failed). */
  run(start: () => Promise<void>): Promise<void> {
    if (!this.pending) {
      const pending = start();
      this.pending = pending;
      pending.catch(() => {
        if (this.pending === pending) this.pending = undefined;
      });
    }
    return this.pending;
  }
}
