/** A timer that beats three times per shortest lease it was asked to cover, until stopped. */
export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | undefined;
  private every = Infinity;

  constructor(private readonly beat: () => void) {}

  /** Beats often enough for a lease of `leaseMs` too (restarted only when that is sooner). */
  cover(leaseMs: number): void {
    const every = Math.max(50, Math.floor(leaseMs / 3));
    if (this.timer && every >= this.every) return;
    this.stop();
    this.every = every;
    this.timer = setInterval(this.beat, every);
  }

  /** Stops beating; the next cover() starts afresh. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.every = Infinity;
  }
}
