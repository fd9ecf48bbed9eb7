import { Histogram, type HistogramData, type LatencySummary } from './histogram.ts';
import { measureCpu, startGenerator, startRawServer, stopAll, type BenchContext } from './launch.ts';
import { check, type ScenarioResult } from './report.ts';
import { BENCH_TASK } from './workload.ts';

/**
 * Raw socket.io figures that scenarios measure (beside the hub, in alternating rounds) and that
 * later scenarios compare with; empty until measured.
 */
export interface RawFigures {
  /** Echo with ack, open loop at the progress rate from the progress scenario's agents. */
  echoLatency?: LatencySummary;
}

/**
 * The raw baseline of server push: a bare socket.io server (own process) pushes with ack to
 * the assignment scenario's number of agents, at saturation and at the assignment rate. The
 * echo and relayed-lifecycle baselines are measured inside the progress and assignment
 * scenarios, in rounds alternating with the hub's, so that a busy machine weighs on both alike.
 */
export async function runBaseline(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { push } = ctx.scale;
  const { raw, url } = await startRawServer(ctx);
  const generator = await startGenerator();
  try {
    ctx.log(`raw push: ${push.agents} connections`);
    await generator.request('agents.connect', { pool: 'push', url, count: push.agents, prefix: 'push', taskType: BENCH_TASK, takeWork: false });
    const cpu = await measureCpu({ raw, generator });
    const pushSat = await raw.request<{ perSecond: number }>('pushSaturate', push.saturation);
    const satCpu = await cpu.end();
    const pushOpen = await raw.request<{ latency: HistogramData; unanswered: number }>('push', { rate: push.rate, durationMs: push.durationMs, warmupMs: push.warmupMs });
    const latency = Histogram.fromJSON(pushOpen.latency).summary();
    return {
      name: 'baseline',
      title: 'Raw socket.io: server push with ack',
      subject: 'Raw socket.io',
      checks: [
        check(`push with ack at saturation, ${push.agents} connections`, 'push/s', pushSat.perSecond),
        check(`push with ack p50 at ${push.rate}/s`, 'ms', latency.p50),
        check(`push with ack p99 at ${push.rate}/s`, 'ms', latency.p99),
        check('raw server CPU at saturation', '%', satCpu.raw ?? 0),
        check('generator CPU at saturation', '%', satCpu.generator ?? 0),
      ],
      details: { pushSaturation: pushSat, pushOpen: { ...pushOpen, latency }, satCpu },
      notes: ['A bare socket.io server with the hub’s transport options. 100 % CPU is one core.'],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(generator, raw);
  }
}

/** Adds up CPU readings of alternating rounds (equal lengths): the mean per process. */
export function meanCpu(rounds: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const round of rounds) for (const [name, value] of Object.entries(round)) out[name] = (out[name] ?? 0) + value / rounds.length;
  for (const name of Object.keys(out)) out[name] = Math.round(out[name]! * 10) / 10;
  return out;
}

/** Merges histograms of several rounds. */
export function merged(histograms: HistogramData[]): Histogram {
  const out = new Histogram();
  for (const data of histograms) out.merge(data);
  return out;
}
