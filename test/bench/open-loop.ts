import { performance } from 'node:perf_hooks';
import { Histogram } from './histogram.ts';

/** Milliseconds since the Unix epoch with sub-millisecond precision, comparable across processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** How long an open-loop run waits for the last answers after its schedule ends. */
const DRAIN_MS = 5000;

/** What an open-loop run did. */
export interface OpenLoopResult {
  /** Requests the schedule asked for. */
  scheduled: number;
  /** Requests answered (in time or late). */
  answered: number;
  /** Requests still unanswered when the run gave up waiting; counted in `latency` as lower bounds. */
  unanswered: number;
  /** Answers that were errors, by code. */
  errors: Record<string, number>;
  /** Ack latency from the intended send time. */
  latency: Histogram;
  /** How late the generator itself sent, after the intended time (its own stalls). */
  sendLag: Histogram;
  /** Answers per second over the whole run, drain included. */
  achievedPerSecond: number;
  elapsedMs: number;
}

/** `done(error?)` is called once the request is answered; `error` is a code when it failed. */
export type Send = (index: number, intendedEpochMs: number, done: (errorCode?: string) => void) => void;

export interface OpenLoopOptions {
  /** Requests per second, all senders together. */
  rate: number;
  /** The measured period, after the warm-up. */
  durationMs: number;
  /**
   * A first period at the same rate whose requests are sent and answered but not counted:
   * fresh connections, cold JIT and growing buffers on either side are not the steady state.
   */
  warmupMs?: number;
  send: Send;
  /** When the schedule starts (epoch ms); default now. Lets two processes share one schedule. */
  startEpochMs?: number;
}

/**
 * Open-loop load: request i is due at start + i / rate whatever happened to earlier ones, and its
 * latency is measured from that intended time, not from when it was actually sent. A server that
 * stalls for 100 ms therefore shows up as 100 ms of latency on every request due meanwhile (no
 * coordinated omission). Timers fire every millisecond or so; the requests due are sent in a burst.
 */
export function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { rate, durationMs, send } = options;
  const warmup = Math.round((rate * (options.warmupMs ?? 0)) / 1000);
  const total = warmup + Math.max(1, Math.round((rate * durationMs) / 1000));
  const interval = 1000 / rate;
  const start = options.startEpochMs ?? epochMs();
  const measuredFrom = start + warmup * interval;
  const latency = new Histogram();
  const sendLag = new Histogram();
  const errors: Record<string, number> = {};
  const pending = new Map<number, number>();
  let next = 0;
  let answered = 0;
  return new Promise((resolve) => {
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      if (drainTimer) clearTimeout(drainTimer);
      const end = epochMs();
      for (const [index, intended] of pending) if (index >= warmup) latency.recordMs(end - intended);
      resolve({
        scheduled: total - warmup,
        answered,
        unanswered: [...pending.keys()].filter((index) => index >= warmup).length,
        errors,
        latency,
        sendLag,
        achievedPerSecond: (answered * 1000) / Math.max(1, end - measuredFrom),
        elapsedMs: end - measuredFrom,
      });
    };
    const tick = () => {
      const now = epochMs();
      const due = Math.min(total, Math.floor((now - start) / interval) + 1);
      while (next < due) {
        const index = next++;
        const intended = start + index * interval;
        const counted = index >= warmup;
        if (counted) sendLag.recordMs(Math.max(0, now - intended));
        pending.set(index, intended);
        send(index, intended, (errorCode) => {
          if (!pending.delete(index)) return;
          if (!counted) return void (next >= total && pending.size === 0 && finish());
          latency.recordMs(epochMs() - intended);
          answered++;
          if (errorCode) errors[errorCode] = (errors[errorCode] ?? 0) + 1;
          if (next >= total && pending.size === 0) finish();
        });
      }
      if (next < total) {
        setTimeout(tick, Math.max(0, Math.min(1, start + next * interval - epochMs())));
      } else if (pending.size === 0) {
        finish();
      } else {
        drainTimer = setTimeout(finish, DRAIN_MS);
      }
    };
    setTimeout(tick, Math.max(0, start - epochMs()));
  });
}

/** What a closed-loop (saturation) run did. */
export interface ClosedLoopResult {
  /** Answers per second inside the measured window. */
  perSecond: number;
  answered: number;
  errors: Record<string, number>;
  latency: Histogram;
  windowMs: number;
}

/**
 * Saturation: `concurrency` requests are kept in flight; each answer sends the next. Counts the
 * answers between `warmupMs` and the end (the ramp-up is left out).
 */
export function runClosedLoop(options: { concurrency: number; durationMs: number; warmupMs: number; send: (index: number, done: (errorCode?: string) => void) => void }): Promise<ClosedLoopResult> {
  const { concurrency, durationMs, warmupMs, send } = options;
  const start = epochMs();
  const windowStart = start + warmupMs;
  const end = start + warmupMs + durationMs;
  const latency = new Histogram();
  const errors: Record<string, number> = {};
  let answered = 0;
  let index = 0;
  let inFlight = 0;
  return new Promise((resolve) => {
    let resolved = false;
    const stop = () => {
      if (resolved) return;
      resolved = true;
      resolve({ perSecond: (answered * 1000) / durationMs, answered, errors, latency, windowMs: durationMs });
    };
    const launch = () => {
      const sentAt = epochMs();
      inFlight++;
      send(index++, (errorCode) => {
        inFlight--;
        const now = epochMs();
        if (now >= windowStart && now < end) {
          answered++;
          latency.recordMs(now - sentAt);
          if (errorCode) errors[errorCode] = (errors[errorCode] ?? 0) + 1;
        }
        if (now < end) launch();
        else if (inFlight === 0) stop();
      });
    };
    for (let i = 0; i < concurrency; i++) launch();
    // Answers that never come must not hang the run.
    setTimeout(stop, warmupMs + durationMs + 10_000).unref();
  });
}
