import type { RequestOf } from '../shared/contract.ts';
import { HubError } from '../shared/errors.ts';

/**
 * Failures after which the update is sent again rather than given to the handler: the hub was
 * unreachable for a while (a restart, a cluster's failover) or asked us to slow down (RATE_LIMITED),
 * and progress says where the task is now: a refusal of that kind must not fail the task.
 */
const SEND_AGAIN = new Set(['DISCONNECTED', 'TIMEOUT', 'UNAVAILABLE', 'RATE_LIMITED']);
/** The pause before sending again after such a failure, so that a hub answering UNAVAILABLE or RATE_LIMITED is not asked in a tight loop. */
const SEND_AGAIN_AFTER_MS = 200;

type Update = RequestOf<'agent', 'task.progress'>;

/**
 * One update standing for `older` then `newer`: the hub keeps a message or details (the checkpoint)
 * an update leaves out, so those of the older one must not be dropped with it.
 */
function coalesce(older: Update | undefined, newer: Update | undefined): Update | undefined {
  return older && newer ? { ...older, ...newer } : (newer ?? older);
}

/**
 * Sends the latest progress of one task: at once when nothing is in flight; while an update is in
 * flight, later ones are coalesced into the newest (the back-pressure the hub's group commit uses).
 * `intervalMs` > 0 adds a rate limit. Callers wait for their update, or the newer one that replaced it.
 */
export class ProgressStream {
  private pending: RequestOf<'agent', 'task.progress'> | undefined;
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight = false;
  /** When the last update left, on performance.now(): a wall clock stepped back would hold the next for the length of the step. */
  private lastSent = -Infinity;
  /** Not before this time (after a failure to send), on performance.now(). */
  private notBefore = -Infinity;
  /** Set by stop(): why nothing more is sent (the task finished, or was taken away). */
  private stopped: (() => Error) | undefined;

  constructor(
    private readonly send: (update: RequestOf<'agent', 'task.progress'>) => Promise<unknown>,
    private readonly intervalMs: number,
  ) {}

  push(update: RequestOf<'agent', 'task.progress'>): Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped());
    this.pending = coalesce(this.pending, update);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.inFlight || this.timer || !this.pending) return;
    const now = performance.now();
    const wait = Math.max(this.lastSent + this.intervalMs - now, this.notBefore - now);
    // No timer when nothing holds the update back: even a 0 ms timeout waits at least 1 ms.
    if (wait <= 0) void this.flush();
    else this.timer = setTimeout(() => void this.flush(), wait);
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    const update = this.pending;
    const waiters = this.waiters;
    if (!update) return;
    this.pending = undefined;
    this.waiters = [];
    this.inFlight = true;
    this.lastSent = performance.now();
    try {
      await this.send(update);
      for (const waiter of waiters) waiter.resolve();
    } catch (error) {
      if (this.stopped) {
        // Stopped while in flight: not sent again after the task's end (or after it was taken away).
        const reason = this.stopped();
        for (const waiter of waiters) waiter.reject(reason);
      } else if (error instanceof HubError && SEND_AGAIN.has(error.code)) {
        // Sent again with whatever newer update came meanwhile; everyone keeps waiting for it.
        this.pending = coalesce(update, this.pending);
        this.waiters.unshift(...waiters);
        this.notBefore = performance.now() + SEND_AGAIN_AFTER_MS;
      } else {
        for (const waiter of waiters) waiter.reject(error as Error);
      }
    } finally {
      this.inFlight = false;
      this.schedule();
    }
  }

  /**
   * Sends the update waiting (its rate limit aside) and resolves once it left, or could not:
   * before a failure is reported, so that the checkpoint it holds is kept for the next attempt.
   */
  async sendPending(): Promise<void> {
    if (!this.pending || this.stopped) return;
    const sent = new Promise<void>((resolve) => this.waiters.push({ resolve, reject: () => resolve() }));
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.notBefore = -Infinity;
    if (!this.inFlight) void this.flush();
    await sent;
  }

  /**
   * Stops sending; whoever still waits is told why. `reason` is called only if someone waits: every
   * task stops its stream, almost always with nobody waiting, and an Error's stack trace is costly.
   */
  stop(reason: () => Error): void {
    this.stopped = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
    const waiters = this.waiters.splice(0);
    if (waiters.length === 0) return;
    const error = reason();
    for (const waiter of waiters) waiter.reject(error);
  }
}
