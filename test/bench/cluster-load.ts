import { merged } from './baseline.ts';
import { Histogram, type HistogramData, type LatencySummary } from './histogram.ts';
import { measureCpu, type BenchContext } from './launch.ts';
import { epochMs } from './open-loop.ts';
import { processTreeCpuMs } from './process-tree-cpu.ts';
import type { BenchChild, Usage } from './processes.ts';
import type { ClosedRun, OpenRun } from './progress.ts';

/** The two sides compared: one hub on the embedded store, and a cluster of nodes on PostgreSQL. */
export const SIDES = ['single', 'cluster'] as const;
export type ClusterSide = (typeof SIDES)[number];

/**
 * The processes of a side whose CPU a round reads: the server its clients write to (the single
 * hub, or the cluster's leader), the followers and PostgreSQL's postmaster with its backends.
 * The generator's agent pool of a side is named after it.
 */
export interface SideProcesses {
  server: BenchChild;
  followers: BenchChild[];
  postgresPid?: number;
  /** Resolves once the side has done the round's work (a cluster: every follower has the leader's version), so that none of it spills into the next round. */
  settle?: () => Promise<void>;
}

/**
 * A round's result, with each process's CPU (100 = one core; `followers` summed), the server's
 * event-loop delay and CPU probe, and how long after the round the side took to settle.
 */
export interface Round<T> {
  result: T;
  cpu: Record<string, number>;
  loopDelay: Usage['loopDelay'];
  cpuProbe: Usage['cpuProbe'];
  settleMs: number;
}

/**
 * Runs one round of `side`, reading the CPU of its processes and of `generators` over that round
 * only, then waits for the side to settle.
 */
async function measureRound<T>(side: SideProcesses, generators: Record<string, BenchChild>, run: () => Promise<T>): Promise<Round<T>> {
  const followers = Object.fromEntries(side.followers.map((child, i) => [`follower${i}`, child]));
  const cpu = await measureCpu({ server: side.server, ...followers, ...generators });
  const postgresBefore = side.postgresPid === undefined ? undefined : processTreeCpuMs(side.postgresPid);
  const startedAt = performance.now();
  const result = await run();
  const postgresAfter = side.postgresPid === undefined ? undefined : processTreeCpuMs(side.postgresPid);
  const wallMs = performance.now() - startedAt;
  const usage = await cpu.end();
  const out: Record<string, number> = { server: usage.server ?? 0 };
  if (side.followers.length > 0) out.followers = Math.round(side.followers.reduce((sum, _, i) => sum + (usage[`follower${i}`] ?? 0), 0) * 10) / 10;
  if (postgresBefore !== undefined && postgresAfter !== undefined) out.postgres = Math.round(((postgresAfter - postgresBefore) / wallMs) * 1000) / 10;
  for (const name of Object.keys(generators)) out[name] = usage[name] ?? 0;
  const settling = performance.now();
  await side.settle?.();
  return { result, cpu: out, loopDelay: cpu.loopDelay.server!, cpuProbe: cpu.cpuProbe.server!, settleMs: Math.round(performance.now() - settling) };
}

/**
 * What the rounds are given for each side: a function that readies it before a round (the cluster:
 * moves its load to a new leader if need be) and answers its processes.
 */
export type Sides = Record<ClusterSide, () => Promise<SideProcesses>>;

/** Told what runs from now on (e.g. the lease watch, which keeps its readings by phase); '' between rounds. */
export type PhaseHook = (name: string) => void;

/** The progress rounds: open loop at the rate, then saturation, each alternating the sides. */
export interface ProgressRounds {
  open: Record<ClusterSide, Array<Round<OpenRun>>>;
  saturation: Record<ClusterSide, Array<Round<ClosedRun>>>;
}

/**
 * The progress scenario's rounds (progress.ts), the single hub's and the cluster's alternating
 * from one generator holding an agent pool for each: every open-loop round first, then saturation.
 */
export async function progressRounds(ctx: BenchContext, sides: Sides, agents: BenchChild, phase: PhaseHook): Promise<ProgressRounds> {
  const { rate, durationMs, warmupMs, saturation, rounds } = ctx.scale.progress;
  const out: ProgressRounds = { open: { single: [], cluster: [] }, saturation: { single: [], cluster: [] } };
  const round = async <T>(side: ClusterSide, name: string, run: () => Promise<T>): Promise<Round<T>> => {
    const processes = await sides[side]();
    phase(`${name}, ${side}`);
    try {
      return await measureRound(processes, { generator: agents }, run);
    } finally {
      phase('');
    }
  };
  for (let r = 0; r < rounds; r++) {
    for (const side of SIDES) {
      ctx.log(`cluster: progress round ${r + 1}/${rounds}, ${side}: ${rate}/s`);
      out.open[side].push(await round(side, `progress at ${rate}/s`, () => agents.request<OpenRun>('agents.progressOpen', { pool: side, run: `${side}${r}`, rate, durationMs: durationMs / rounds, warmupMs })));
    }
  }
  const satRound = { ...saturation, durationMs: Math.round(saturation.durationMs / rounds) };
  for (let r = 0; r < rounds; r++) {
    for (const side of SIDES) {
      ctx.log(`cluster: progress round ${r + 1}/${rounds}, ${side}: saturation`);
      out.saturation[side].push(await round(side, 'progress at saturation', () => agents.request<ClosedRun>('agents.progressClosed', { pool: side, ...satRound })));
    }
  }
  return out;
}

/** A subscriber process of the fan-out: which node its subscribers are on, and whether it leads. */
export interface Subscribers {
  process: BenchChild;
  node: string;
  role: 'single' | 'leader' | 'follower';
}

/** What the subscribers of one side saw over every round. */
export interface FanoutSide {
  /** From each update's intended send time until a patch showing it arrived (scenario 3's staleness). */
  staleness: Histogram;
  /** From each update's ack at the agent until a patch showing it arrived. */
  sinceAck: Histogram;
  /** Updates a subscriber saw before their agent had the ack (counted as 0 in `sinceAck`). */
  beforeAck: number;
  /** Staleness by subscriber process (node), and by the role of the node: from the send time, and from the ack. */
  byNode: Record<string, Histogram>;
  byRole: Partial<Record<Subscribers['role'], Histogram>>;
  sinceAckByRole: Partial<Record<Subscribers['role'], Histogram>>;
  unseen: number;
  resyncs: number;
  patches: number;
  ack: Histogram;
  errors: number;
  rounds: Array<Round<{ staleness: LatencySummary; sinceAck: LatencySummary; ack: LatencySummary }>>;
}

/**
 * The fan-out rounds, alternating the sides: while a side's agents send progress at the rate, its
 * subscriber processes measure staleness (monitor-pool.ts), armed with the same schedule: from each
 * request's intended send time until a patch carrying it arrives, and from its ack at the agent.
 */
export async function fanoutRounds(ctx: BenchContext, sides: Sides, agents: BenchChild, agentCount: number, subscribers: Record<ClusterSide, Subscribers[]>, phase: PhaseHook): Promise<Record<ClusterSide, FanoutSide>> {
  const { rate, durationMs, warmupMs, rounds } = ctx.scale.cluster.fanout;
  const empty = (): FanoutSide => ({ staleness: new Histogram(), sinceAck: new Histogram(), beforeAck: 0, byNode: {}, byRole: {}, sinceAckByRole: {}, unseen: 0, resyncs: 0, patches: 0, ack: new Histogram(), errors: 0, rounds: [] });
  const out: Record<ClusterSide, FanoutSide> = { single: empty(), cluster: empty() };
  const roundMs = durationMs / rounds;
  for (let r = 0; r < rounds; r++) {
    for (const side of SIDES) {
      ctx.log(`cluster: fan-out round ${r + 1}/${rounds}, ${side}: ${subscribers[side].length} × ${ctx.scale.cluster.fanout.subscribersPerNode} subscribers, ${rate}/s`);
      const run = `f${side}${r}`;
      const processes = await sides[side]();
      const monitors = subscribers[side];
      // Every generator collects before the schedule is set, so that none starts it late (fanout.ts).
      await Promise.all([agents.request('gc'), ...monitors.map((m) => m.process.request('gc'))]);
      const startEpochMs = epochMs() + 300;
      const firstIndex = Math.round((rate * warmupMs) / 1000);
      const total = firstIndex + Math.round((rate * roundMs) / 1000);
      await Promise.all(monitors.map((m) => m.process.request('monitors.arm', { run, startEpochMs, rate, agents: agentCount, total, firstIndex, keepArrivals: true })));
      const generators = Object.fromEntries(monitors.map((m) => [`monitors ${m.node}`, m.process]));
      phase(`fan-out at ${rate}/s, ${side}`);
      const round = await measureRound(processes, { generator: agents, ...generators }, async () => {
        const open = await agents.request<OpenRun>('agents.progressOpen', { pool: side, run, rate, durationMs: roundMs, warmupMs, startEpochMs, keepAcks: true });
        // Patches leave a node one patch interval after it has the change; a follower has it a little later.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        return open;
      }).finally(() => phase(''));
      const seen = await Promise.all(
        monitors.map((m) => m.process.request<{ staleness: HistogramData; sinceAck: HistogramData; beforeAck: number; patches: number; resyncs: number; unseen: number }>('monitors.collect', { acks: round.result.acks })),
      );
      const figures = out[side];
      monitors.forEach((m, i) => {
        const s = seen[i]!;
        figures.staleness.merge(s.staleness);
        figures.sinceAck.merge(s.sinceAck);
        figures.beforeAck += s.beforeAck;
        (figures.sinceAckByRole[m.role] ??= new Histogram()).merge(s.sinceAck);
        (figures.byNode[m.node] ??= new Histogram()).merge(s.staleness);
        (figures.byRole[m.role] ??= new Histogram()).merge(s.staleness);
        figures.unseen += s.unseen;
        figures.resyncs += s.resyncs;
        figures.patches += s.patches;
      });
      figures.ack.merge(round.result.latency);
      figures.errors += Object.values(round.result.errors).reduce((a, b) => a + b, 0) + round.result.unanswered;
      figures.rounds.push({ ...round, result: { staleness: merged(seen.map((s) => s.staleness)).summary(), sinceAck: merged(seen.map((s) => s.sinceAck)).summary(), ack: Histogram.fromJSON(round.result.latency).summary() } });
    }
  }
  return out;
}
