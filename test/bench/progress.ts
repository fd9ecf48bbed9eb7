import { connectControl } from '../../client-sdk/index.ts';
import type { RawBaseline } from './baseline.ts';
import { Histogram, type HistogramData } from './histogram.ts';
import { measureCpu, startGenerator, startHub, stopAll, type BenchContext } from './launch.ts';
import type { BenchChild } from './processes.ts';
import { check, type ScenarioResult } from './report.ts';
import { BENCH_TASK, BENCH_TOKENS, LONG_TIMEOUTS } from './workload.ts';

/** What the agents' generator returns for an open-loop progress run. */
export interface OpenRun {
  scheduled: number;
  answered: number;
  unanswered: number;
  errors: Record<string, number>;
  latency: HistogramData;
  sendLag: HistogramData;
  achievedPerSecond: number;
}

/**
 * A hub (own process) with one started workflow and `agents` agents (a generator process of bare
 * sockets), each running one of its work orders and ready to stream progress on it.
 */
export class ProgressRig {
  private constructor(
    readonly hub: BenchChild,
    readonly agents: BenchChild,
    readonly url: string,
    readonly workflowId: string,
    readonly agentCount: number,
  ) {}

  static async start(ctx: BenchContext, name: string, agentCount: number): Promise<ProgressRig> {
    const { hub, ready } = await startHub(ctx, name);
    let agents: BenchChild | undefined;
    try {
      const control = await connectControl({ url: ready.url, token: BENCH_TOKENS.admin, requestTimeoutMs: 60_000 });
      const wf = await control.createWorkflow({ userQuery: `bench: ${name}` });
      await wf.start();
      for (let done = 0; done < agentCount; done += 1000) {
        const count = Math.min(1000, agentCount - done);
        await wf.createWorkOrders(Array.from({ length: count }, (_, i) => ({ taskType: BENCH_TASK, description: `progress ${done + i}`, timeouts: LONG_TIMEOUTS })));
      }
      control.close();
      agents = await startGenerator('agents');
      await agents.request('agents.connect', { url: ready.url, count: agentCount, prefix: 'agent', taskType: BENCH_TASK, takeWork: true });
      return new ProgressRig(hub, agents, ready.url, wf.id, agentCount);
    } catch (error) {
      await stopAll(agents, hub);
      throw error;
    }
  }

  /** Open-loop progress at `rate`; `startEpochMs` lets subscribers know the schedule. */
  progress(run: string, rate: number, durationMs: number, startEpochMs?: number): Promise<OpenRun> {
    return this.agents.request<OpenRun>('agents.progressOpen', { run, rate, durationMs, ...(startEpochMs === undefined ? {} : { startEpochMs }) });
  }

  stop(): Promise<void> {
    return stopAll(this.agents, this.hub);
  }
}

/** Scenario 1: progress updates, throughput at saturation and ack latency at a fixed rate. */
export async function runProgress(ctx: BenchContext, raw: RawBaseline): Promise<ScenarioResult> {
  const started = performance.now();
  const { agents, rate, durationMs, saturation } = ctx.scale.progress;
  ctx.log(`hub progress: ${agents} agents`);
  const rig = await ProgressRig.start(ctx, 'progress', agents);
  try {
    let cpu = await measureCpu({ hub: rig.hub, generator: rig.agents });
    const sat = await rig.agents.request<{ perSecond: number; errors: Record<string, number>; latency: HistogramData }>('agents.progressClosed', saturation);
    const satCpu = await cpu.end();
    ctx.log(`hub progress: open loop at ${rate}/s`);
    cpu = await measureCpu({ hub: rig.hub, generator: rig.agents });
    const open = await rig.progress('p', rate, durationMs);
    const openCpu = await cpu.end();
    const loopDelay = cpu.loopDelay;
    const latency = Histogram.fromJSON(open.latency).summary();
    const errors = Object.values(open.errors).reduce((a, b) => a + b, 0) + Object.values(sat.errors).reduce((a, b) => a + b, 0);
    return {
      name: 'progress',
      title: '1. Progress updates',
      checks: [
        check(`throughput at saturation, ${agents} agents`, 'req/s', sat.perSecond, raw.echoPerSecond, { ratioMin: 0.5, text: '≥ 50 % of raw' }),
        check(`ack p50 at ${rate}/s`, 'ms', latency.p50, raw.echoLatency.p50),
        check(`ack p99 at ${rate}/s`, 'ms', latency.p99, raw.echoLatency.p99, { ratioMax: 2.5, text: '≤ 2.5 × raw' }),
        check(`ack max at ${rate}/s`, 'ms', latency.max, raw.echoLatency.max),
        check(`answered per second at ${rate}/s`, 'req/s', open.achievedPerSecond),
        check('requests refused or unanswered', '', errors + open.unanswered, null, { max: 0, text: '0' }),
        check('hub CPU at saturation', '%', satCpu.hub ?? 0),
        check('generator CPU at saturation', '%', satCpu.generator ?? 0),
        check(`hub CPU at ${rate}/s`, '%', openCpu.hub ?? 0),
        check(`hub event-loop delay p99 at ${rate}/s`, 'ms', loopDelay.hub?.p99 ?? 0),
        check(`hub event-loop delay max at ${rate}/s`, 'ms', loopDelay.hub?.max ?? 0),
        check(`generator CPU at ${rate}/s`, '%', openCpu.generator ?? 0),
      ],
      details: { saturation: { ...sat, latency: Histogram.fromJSON(sat.latency).summary() }, open: { ...open, latency, sendLag: Histogram.fromJSON(open.sendLag).summary() }, satCpu, openCpu, loopDelay },
      notes: [
        `Agents are bare socket.io-client sockets in one generator process, each running one work order; saturation keeps ${saturation.concurrency} requests in flight.`,
        'Latency is from the intended send time to the ack, which the hub sends after the change is journaled.',
      ],
      durationMs: performance.now() - started,
    };
  } finally {
    await rig.stop();
  }
}
