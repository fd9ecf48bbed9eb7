import { connectControl } from '../../client-sdk/index.ts';
import { meanCpu, merged, type RawFigures } from './baseline.ts';
import { Histogram, type HistogramData } from './histogram.ts';
import { alternateRounds, startGenerator, startHub, startRawServer, stopAll, type BenchContext } from './launch.ts';
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
  /** With `keepAcks`: when each request's ack came (epoch ms by request index, null for none). */
  acks?: Array<number | null>;
}

export interface ClosedRun {
  perSecond: number;
  errors: Record<string, number>;
  latency: HistogramData;
}

/**
 * Creates a started workflow of `orders` work orders for the progress agents, one each, through a
 * control client given `url` (a cluster's nodes: the SDK finds the leader); resolves with its id.
 */
export async function createProgressWorkflow(url: string | string[], name: string, orders: number): Promise<string> {
  const control = await connectControl({ url, token: BENCH_TOKENS.admin, requestTimeoutMs: 60_000 });
  try {
    const wf = await control.createWorkflow({ userQuery: `bench: ${name}` });
    await wf.start();
    for (let done = 0; done < orders; done += 1000) {
      const count = Math.min(1000, orders - done);
      await wf.createWorkOrders(Array.from({ length: count }, (_, i) => ({ taskType: BENCH_TASK, description: `progress ${done + i}`, timeouts: LONG_TIMEOUTS })));
    }
    return wf.id;
  } finally {
    await control.close();
  }
}

/**
 * A hub (own process) with one started workflow and `agents` agents (a generator process of bare
 * sockets, pool `hub`), each running one of its work orders and ready to stream progress on it.
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
      const workflowId = await createProgressWorkflow(ready.url, name, agentCount);
      agents = await startGenerator('agents');
      await agents.request('agents.connect', { pool: 'hub', url: ready.url, count: agentCount, prefix: 'agent', taskType: BENCH_TASK, takeWork: true });
      return new ProgressRig(hub, agents, ready.url, workflowId, agentCount);
    } catch (error) {
      await stopAll(agents, hub);
      throw error;
    }
  }

  /** Open-loop progress at `rate` from pool `pool`; `startEpochMs` lets subscribers know the schedule. */
  progress(run: string, rate: number, durationMs: number, warmupMs: number, startEpochMs?: number, pool = 'hub'): Promise<OpenRun> {
    return this.agents.request<OpenRun>('agents.progressOpen', { pool, run, rate, durationMs, warmupMs, ...(startEpochMs === undefined ? {} : { startEpochMs }) });
  }

  stop(): Promise<void> {
    return stopAll(this.agents, this.hub);
  }
}

/**
 * Scenario 1: progress updates. The same generator process drives the hub's agents and, through
 * a second pool of as many sockets, a bare socket.io server that only acks; saturation and the
 * open-loop rate are measured in rounds alternating between the two.
 */
export async function runProgress(ctx: BenchContext, raw: RawFigures): Promise<ScenarioResult> {
  const started = performance.now();
  const { agents, rate, durationMs, warmupMs, saturation, rounds } = ctx.scale.progress;
  ctx.log(`progress: ${agents} agents on the hub and as many on the raw server`);
  const rig = await ProgressRig.start(ctx, 'progress', agents);
  let rawServer: BenchChild | undefined;
  try {
    const started_ = await startRawServer(ctx);
    rawServer = started_.raw;
    await rig.agents.request('agents.connect', { pool: 'raw', url: started_.url, count: agents, prefix: 'echo', taskType: BENCH_TASK, takeWork: false });
    // The generator's agent pools are named after the sides they drive.
    const servers = { raw: rawServer, hub: rig.hub };
    const satRound = { ...saturation, durationMs: Math.round(saturation.durationMs / rounds) };
    const log = (what: string) => (r: number, side: string) => ctx.log(`progress: round ${r + 1}/${rounds}, ${side}: ${what}`);
    // Every open-loop round runs before any saturation: a saturated server holds a thousand
    // requests at a time, they outlive scavenges into the old generation, and the mark-compact
    // that collected them fell into the open-loop phase that followed.
    const open = await alternateRounds(rounds, servers, rig.agents, log(`${rate}/s`), (side, r) => rig.progress(`${side}${r}`, rate, durationMs / rounds, warmupMs, undefined, side));
    const sat = await alternateRounds(rounds, servers, rig.agents, log('saturation'), (side) => rig.agents.request<ClosedRun>('agents.progressClosed', { pool: side, ...satRound }));
    const perSecond = (side: 'raw' | 'hub') => sat[side].reduce((sum, p) => sum + p.result.perSecond, 0) / rounds;
    const latency = (side: 'raw' | 'hub') => merged(open[side].map((p) => p.result.latency)).summary();
    const count = (runs: Array<{ result: { errors: Record<string, number> } }>) => runs.reduce((n, p) => n + Object.values(p.result.errors).reduce((a, b) => a + b, 0), 0);
    const hubLatency = latency('hub');
    const rawLatency = latency('raw');
    raw.echoLatency = rawLatency;
    const cpu = (runs: Array<{ cpu: Record<string, number> }>) => meanCpu(runs.map((p) => p.cpu));
    const unanswered = open.hub.reduce((n, p) => n + p.result.unanswered, 0);
    const loopMax = Math.max(...open.hub.map((p) => p.loopDelay.max));
    const loopP99 = Math.max(...open.hub.map((p) => p.loopDelay.p99));
    const slowestProbe = (side: 'raw' | 'hub') => Math.max(...open[side].map((p) => p.cpuProbe.server?.p50 ?? 0));
    return {
      name: 'progress',
      title: '1. Progress updates',
      checks: [
        check(`throughput at saturation, ${agents} agents`, 'req/s', perSecond('hub'), perSecond('raw'), { ratioMin: 0.74, text: '≥ 0.74 × raw' }),
        check(`ack p50 at ${rate}/s`, 'ms', hubLatency.p50, rawLatency.p50),
        check(`ack p99 at ${rate}/s`, 'ms', hubLatency.p99, rawLatency.p99, { ratioMax: 2.5, text: '≤ 2.5 × raw' }),
        check(`ack max at ${rate}/s`, 'ms', hubLatency.max, rawLatency.max),
        check('requests refused or unanswered', '', count(sat.hub) + count(open.hub) + unanswered, null, { max: 0, text: '0' }),
        check('server CPU at saturation', '%', cpu(sat.hub).server ?? 0, cpu(sat.raw).server ?? null),
        check('generator CPU at saturation', '%', cpu(sat.hub).generator ?? 0, cpu(sat.raw).generator ?? null),
        check(`server CPU at ${rate}/s`, '%', cpu(open.hub).server ?? 0, cpu(open.raw).server ?? null),
        check(`generator CPU at ${rate}/s`, '%', cpu(open.hub).generator ?? 0, cpu(open.raw).generator ?? null),
        check(`server event-loop delay p99 at ${rate}/s (worst round)`, 'ms', loopP99, Math.max(...open.raw.map((p) => p.loopDelay.p99))),
        check(`server event-loop delay max at ${rate}/s`, 'ms', loopMax, Math.max(...open.raw.map((p) => p.loopDelay.max))),
        check(`server CPU probe p50 at ${rate}/s (slowest round)`, 'µs', slowestProbe('hub'), slowestProbe('raw')),
      ],
      details: {
        saturation: { hub: sat.hub.map((p) => ({ perSecond: p.result.perSecond, cpu: p.cpu })), raw: sat.raw.map((p) => ({ perSecond: p.result.perSecond, cpu: p.cpu })) },
        open: {
          hub: { latency: hubLatency, rounds: open.hub.map((p) => ({ latency: Histogram.fromJSON(p.result.latency).summary(), achievedPerSecond: p.result.achievedPerSecond, errors: p.result.errors, unanswered: p.result.unanswered, cpu: p.cpu, loopDelay: p.loopDelay, generatorLoopDelay: p.generatorLoopDelay, cpuProbe: p.cpuProbe, sendLag: Histogram.fromJSON(p.result.sendLag).summary() })) },
          raw: { latency: rawLatency, rounds: open.raw.map((p) => ({ latency: Histogram.fromJSON(p.result.latency).summary(), achievedPerSecond: p.result.achievedPerSecond, cpu: p.cpu, loopDelay: p.loopDelay, generatorLoopDelay: p.generatorLoopDelay, cpuProbe: p.cpuProbe, sendLag: Histogram.fromJSON(p.result.sendLag).summary() })) },
        },
      },
      notes: [
        `Agents are bare socket.io-client sockets in one generator process, each running one work order; the raw column is the same process driving as many sockets against a bare socket.io server that acks. ${rounds} rounds alternate raw and hub.`,
        'The CPU probe is a fixed piece of work each process times every 10 ms (machine line above for the idle figure): when it is slow in a round, that round ran on a slowed CPU, whichever server it measured.',
        `Saturation keeps ${saturation.concurrency} requests in flight. Latency is from the intended send time to the ack, which the hub sends after the change is journaled; the first ${warmupMs} ms of each open-loop phase are a warm-up at the same rate, not counted.`,
      ],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(rawServer);
    await rig.stop();
  }
}
