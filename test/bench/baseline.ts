import { Histogram, type HistogramData, type LatencySummary } from './histogram.ts';
import { measureCpu, startGenerator, startRawServer, stopAll, type BenchContext } from './launch.ts';
import type { BenchChild } from './processes.ts';
import { check, type ScenarioResult } from './report.ts';
import { BENCH_TASK } from './workload.ts';

/** The raw socket.io figures the hub's are compared with. */
export interface RawBaseline {
  /** Echo with ack at saturation, requests per second. */
  echoPerSecond: number;
  /** Echo with ack, open loop at the progress rate. */
  echoLatency: LatencySummary;
  /** Server push with ack at saturation, pushes per second. */
  pushPerSecond: number;
  pushLatency: LatencySummary;
  /** Create → push → ack → progress → complete over bare socket.io. */
  lifecycleDelivery: LatencySummary;
  lifecycleCompletedPerSecond: number;
  lifecycleSaturationPerSecond: number;
}

const none = { count: 0, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
/** A baseline with nothing measured (`--no-baseline`, for profiling the hub alone): ratios stay empty. */
export const NO_BASELINE: RawBaseline = {
  echoPerSecond: NaN,
  echoLatency: none,
  pushPerSecond: NaN,
  pushLatency: none,
  lifecycleDelivery: none,
  lifecycleCompletedPerSecond: NaN,
  lifecycleSaturationPerSecond: NaN,
};

const summary = (data: HistogramData) => Histogram.fromJSON(data).summary();

/** Waits until the raw server holds no agent sockets from an earlier phase. */
async function drained(raw: BenchChild): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { agents } = await raw.request<{ agents: number }>('sockets');
    if (agents === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The baseline: a bare socket.io server (own process) under the same load the hub gets — echo
 * with ack from the progress scenario's agents, push with ack to the assignment scenario's agents,
 * and the assignment lifecycle's messages relayed without a hub.
 */
export async function runBaseline(ctx: BenchContext): Promise<{ result: ScenarioResult; baseline: RawBaseline }> {
  const started = performance.now();
  const { progress, push, assignment } = ctx.scale;
  const { raw, url } = await startRawServer();
  const generator = await startGenerator();
  try {
    ctx.log(`raw echo: ${progress.agents} connections`);
    await generator.request('agents.connect', { pool: 'echo', url, count: progress.agents, prefix: 'echo', taskType: BENCH_TASK, takeWork: false });
    let cpu = await measureCpu({ raw, generator });
    const echoSat = await generator.request<{ perSecond: number; errors: Record<string, number> }>('agents.progressClosed', { pool: 'echo', ...progress.saturation });
    const echoSatCpu = await cpu.end();
    cpu = await measureCpu({ raw, generator });
    const echoOpen = await generator.request<{ latency: HistogramData; unanswered: number; achievedPerSecond: number }>('agents.progressOpen', {
      pool: 'echo',
      rate: progress.rate,
      durationMs: progress.durationMs,
      run: 'raw',
    });
    const echoOpenCpu = await cpu.end();
    await generator.request('agents.close', { pool: 'echo' });
    await drained(raw);

    ctx.log(`raw push: ${push.agents} connections`);
    await generator.request('agents.connect', { pool: 'push', url, count: push.agents, prefix: 'push', taskType: BENCH_TASK, takeWork: false });
    const pushSat = await raw.request<{ perSecond: number }>('pushSaturate', push.saturation);
    const pushOpen = await raw.request<{ latency: HistogramData; unanswered: number }>('push', { rate: push.rate, durationMs: push.durationMs });
    await generator.request('agents.close', { pool: 'push' });
    await drained(raw);

    ctx.log(`raw lifecycle: ${assignment.agents} agents at ${assignment.rate}/s`);
    const lifecycle = await generator.request<{ open: { delivery: HistogramData; completedPerSecond: number }; saturation: { completedPerSecond: number } }>('lifecycle.raw', {
      url,
      agents: assignment.agents,
      rate: assignment.rate,
      durationMs: assignment.durationMs,
      saturate: assignment.saturation,
    });

    const baseline: RawBaseline = {
      echoPerSecond: echoSat.perSecond,
      echoLatency: summary(echoOpen.latency),
      pushPerSecond: pushSat.perSecond,
      pushLatency: summary(pushOpen.latency),
      lifecycleDelivery: summary(lifecycle.open.delivery),
      lifecycleCompletedPerSecond: lifecycle.open.completedPerSecond,
      lifecycleSaturationPerSecond: lifecycle.saturation.completedPerSecond,
    };
    const result: ScenarioResult = {
      name: 'baseline',
      title: 'Raw socket.io baseline',
      checks: [
        check(`echo with ack at saturation, ${progress.agents} connections`, 'req/s', baseline.echoPerSecond),
        check(`echo with ack p50 at ${progress.rate}/s`, 'ms', baseline.echoLatency.p50),
        check(`echo with ack p99 at ${progress.rate}/s`, 'ms', baseline.echoLatency.p99),
        check(`push with ack at saturation, ${push.agents} connections`, 'push/s', baseline.pushPerSecond),
        check(`push with ack p99 at ${push.rate}/s`, 'ms', baseline.pushLatency.p99),
        check(`relayed lifecycle: create → agent p99 at ${assignment.rate}/s`, 'ms', baseline.lifecycleDelivery.p99),
        check(`relayed lifecycle at saturation, ${assignment.agents} agents`, 'orders/s', baseline.lifecycleSaturationPerSecond),
        check('raw server CPU during echo saturation', '%', echoSatCpu.raw ?? 0),
        check('generator CPU during echo saturation', '%', echoSatCpu.generator ?? 0),
        check(`raw server CPU during echo at ${progress.rate}/s`, '%', echoOpenCpu.raw ?? 0),
        check(`generator CPU during echo at ${progress.rate}/s`, '%', echoOpenCpu.generator ?? 0),
      ],
      details: { baseline, echoSaturation: echoSat, echoOpen: { ...echoOpen, latency: baseline.echoLatency }, echoSatCpu, echoOpenCpu, pushOpen: { ...pushOpen, latency: baseline.pushLatency } },
      notes: ['100 % CPU is one core. The raw server only acks; see the progress and assignment tables for the hub beside these figures.'],
      durationMs: performance.now() - started,
    };
    return { result, baseline };
  } finally {
    await stopAll(generator, raw);
  }
}
