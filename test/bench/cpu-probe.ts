import { Histogram } from './histogram.ts';

/**
 * A fixed piece of work timed at intervals: how fast this process's CPU runs just now. On a VM
 * whose cores are shared (hyperthread siblings, a busy host) the same work takes several times as
 * long at times, and a server near saturation falls behind then. Every bench child runs one, so
 * a slow round can be told apart from a slow server (raw and hub alike).
 */
const data = new Float64Array(4096);

/** Times one run of the fixed work, in µs (40–125 µs on the idle bench machine, depending on the moment). */
function probeOnce(): number {
  const started = process.hrtime.bigint();
  for (let pass = 0; pass < 8; pass++) {
    for (let i = 0; i < 4096; i++) data[i] = data[(i * 7) & 4095]! * 0.5 + i;
  }
  return Number(process.hrtime.bigint() - started) / 1000;
}

/** The median of `count` probes in a row (after a warm-up): the figure for an unloaded moment. */
export function probeNow(count = 200): number {
  for (let i = 0; i < 100; i++) probeOnce();
  const times = Array.from({ length: count }, probeOnce).sort((a, b) => a - b);
  return times[Math.floor(count / 2)]!;
}

/** Probes every `everyMs` (unref'd, ~0.4 % of a core at 10 ms); `take()` returns and resets the timings. */
export function startCpuProbe(everyMs = 10): { take(): { p50: number; p90: number; p99: number } } {
  for (let i = 0; i < 100; i++) probeOnce();
  let timings = new Histogram();
  setInterval(() => timings.recordMs(probeOnce() / 1000), everyMs).unref();
  return {
    take() {
      const summary = timings.summary();
      timings = new Histogram();
      // summary() is in ms; the probe reads better in µs.
      return { p50: Math.round(summary.p50 * 1000), p90: Math.round(summary.p90 * 1000), p99: Math.round(summary.p99 * 1000) };
    },
  };
}
