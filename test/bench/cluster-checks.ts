import { meanCpu, merged } from './baseline.ts';
import { FAILOVER_BOUND_MS, type Failover } from './cluster-failover.ts';
import type { ClusterSide, FanoutSide, ProgressRounds } from './cluster-load.ts';
import type { BenchContext } from './launch.ts';
import type { LeaseChange, LeaseWatch } from './lease-watch.ts';
import { check, type Check } from './report.ts';

/** The mean of the runs' `perSecond`. */
const meanRate = (runs: Array<{ result: { perSecond: number } }>) => runs.reduce((sum, p) => sum + p.result.perSecond, 0) / Math.max(1, runs.length);
const errorCount = (errors: Record<string, number>) => Object.values(errors).reduce((a, b) => a + b, 0);

/** The server's CPU probe p50 in the round where it was slowest: a round on a slowed CPU shows, whichever side it measured. */
function slowestProbe(progress: ProgressRounds, side: ClusterSide): number {
  return Math.max(...[...progress.open[side], ...progress.saturation[side]].map((p) => p.cpuProbe?.p50 ?? 0));
}

export function progressChecks(ctx: BenchContext, progress: ProgressRounds): Check[] {
  const { agents, rate } = ctx.scale.progress;
  const latency = (side: ClusterSide) => merged(progress.open[side].map((p) => p.result.latency)).summary();
  const [single, cluster] = [latency('single'), latency('cluster')];
  const cpu = (rounds: Array<{ cpu: Record<string, number> }>) => meanCpu(rounds.map((p) => p.cpu));
  const refused = progress.open.cluster.reduce((n, p) => n + errorCount(p.result.errors) + p.result.unanswered, 0) + progress.saturation.cluster.reduce((n, p) => n + errorCount(p.result.errors), 0);
  const [satCluster, satSingle, openCluster, openSingle] = [cpu(progress.saturation.cluster), cpu(progress.saturation.single), cpu(progress.open.cluster), cpu(progress.open.single)];
  return [
    check(`progress: acknowledged throughput at saturation, ${agents} agents (compared with: single hub)`, 'req/s', meanRate(progress.saturation.cluster), meanRate(progress.saturation.single), { ratioMin: 0.5, text: '≥ 0.5 × single' }),
    check(`progress: ack p50 at ${rate}/s`, 'ms', cluster.p50, single.p50),
    check(`progress: ack p99 at ${rate}/s`, 'ms', cluster.p99, single.p99),
    check(`progress: ack max at ${rate}/s`, 'ms', cluster.max, single.max),
    check('progress: requests refused or unanswered', '', refused, null, { max: 0, text: '0' }),
    check('progress: leader CPU at saturation (compared with: single hub)', '%', satCluster.server ?? 0, satSingle.server ?? null),
    check("progress: followers' CPU at saturation, both", '%', satCluster.followers ?? 0),
    check('progress: PostgreSQL CPU at saturation', '%', satCluster.postgres ?? 0),
    check(`progress: leader CPU at ${rate}/s (compared with: single hub)`, '%', openCluster.server ?? 0, openSingle.server ?? null),
    check(`progress: followers' CPU at ${rate}/s, both`, '%', openCluster.followers ?? 0),
    check(`progress: PostgreSQL CPU at ${rate}/s`, '%', openCluster.postgres ?? 0),
    check(`progress: agent generator CPU at saturation (compared with: single hub)`, '%', satCluster.generator ?? 0, satSingle.generator ?? null),
    check(`progress: leader CPU probe p50, slowest round (compared with: single hub)`, 'µs', slowestProbe(progress, 'cluster'), slowestProbe(progress, 'single')),
    check(`progress: followers catching up after a round at ${rate}/s, the slowest (from the round's last ack)`, 'ms', Math.max(...progress.open.cluster.map((p) => p.settleMs))),
    check('progress: followers catching up after a round at saturation, the slowest', 'ms', Math.max(...progress.saturation.cluster.map((p) => p.settleMs))),
  ];
}

export function fanoutChecks(ctx: BenchContext, fan: Record<ClusterSide, FanoutSide>): Check[] {
  const { subscribersPerNode, rate } = ctx.scale.cluster.fanout;
  const nodes = ctx.scale.cluster.nodes;
  const [sinceAck, sinceAckSingle] = [fan.cluster.sinceAck.summary(), fan.single.sinceAck.summary()];
  const [sinceSend, sinceSendSingle] = [fan.cluster.staleness.summary(), fan.single.staleness.summary()];
  const leader = fan.cluster.sinceAckByRole.leader?.summary();
  const followers = fan.cluster.sinceAckByRole.follower?.summary();
  const cpu = (side: ClusterSide) => meanCpu(fan[side].rounds.map((p) => p.cpu));
  const [cpuCluster, cpuSingle] = [cpu('cluster'), cpu('single')];
  const subscriberCpu = (usage: Record<string, number>) => Object.entries(usage).reduce((sum, [name, value]) => sum + (name.startsWith('monitors ') ? value : 0), 0);
  const followerCount = (nodes - 1) * subscribersPerNode;
  return [
    check(`fan-out: staleness from the ack p99, ${nodes * subscribersPerNode} subscribers over ${nodes} nodes (compared with: ${subscribersPerNode} on the single hub)`, 'ms', sinceAck.p99, sinceAckSingle.p99, { max: 250, text: '≤ 250 ms' }),
    check('fan-out: staleness from the ack p50', 'ms', sinceAck.p50, sinceAckSingle.p50),
    check('fan-out: staleness from the ack max', 'ms', sinceAck.max, sinceAckSingle.max),
    check("fan-out: staleness from the intended send time (scenario 3's) p99", 'ms', sinceSend.p99, sinceSendSingle.p99),
    check("fan-out: staleness from the intended send time (scenario 3's) p50", 'ms', sinceSend.p50, sinceSendSingle.p50),
    check(`fan-out: staleness from the ack p99, the leader's ${subscribersPerNode} subscribers`, 'ms', leader?.p99 ?? 0),
    check(`fan-out: staleness from the ack p99, the followers' ${followerCount} subscribers`, 'ms', followers?.p99 ?? 0),
    check(`fan-out: staleness from the ack p50, the followers' ${followerCount} subscribers`, 'ms', followers?.p50 ?? 0),
    check(`fan-out: progress ack p99 at ${rate}/s meanwhile`, 'ms', fan.cluster.ack.summary().p99, fan.single.ack.summary().p99),
    check('fan-out: changes never seen, resyncs, progress refused or unanswered', '', fan.cluster.unseen + fan.cluster.resyncs + fan.cluster.errors, fan.single.unseen + fan.single.resyncs + fan.single.errors, { max: 0, text: '0' }),
    check('fan-out: updates a subscriber saw before their ack reached the agent (counted as 0)', '%', (100 * fan.cluster.beforeAck) / Math.max(1, fan.cluster.sinceAck.count), (100 * fan.single.beforeAck) / Math.max(1, fan.single.sinceAck.count)),
    check('fan-out: leader CPU (compared with: single hub)', '%', cpuCluster.server ?? 0, cpuSingle.server ?? null),
    check("fan-out: followers' CPU, both", '%', cpuCluster.followers ?? 0),
    check('fan-out: PostgreSQL CPU', '%', cpuCluster.postgres ?? 0),
    check('fan-out: subscriber processes CPU, all', '%', subscriberCpu(cpuCluster), subscriberCpu(cpuSingle)),
  ];
}

/** The median: the middle value, or the mean of the two middle ones. */
export function median(sorted: number[]): number {
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function failoverChecks(ctx: BenchContext, failovers: Failover[], failed: string | undefined): Check[] {
  const times = failovers.map((f) => f.ms).sort((a, b) => a - b);
  const takeovers = failovers.flatMap((f) => (f.takeoverMs === null ? [] : [f.takeoverMs])).sort((a, b) => a - b);
  const kills = ctx.scale.cluster.failover.kills;
  const what = `kill -9 of the leader → first acknowledged write on the new leader`;
  return [
    ...(times.length
      ? [
          check(`failover: ${what}, median of ${times.length}`, 'ms', median(times)),
          check(`failover: ${what}, min`, 'ms', times[0]!),
          check(`failover: ${what}, max`, 'ms', times[times.length - 1]!),
        ]
      : []),
    ...(takeovers.length ? [check(`failover: kill -9 → a surviving node answers GET /cluster as leader, median of ${takeovers.length}`, 'ms', median(takeovers))] : []),
    check(`failover: kills (of ${kills}) without a write acknowledged within ${FAILOVER_BOUND_MS / 1000} s`, '', failed ? kills - failovers.length : 0, null, { max: 0, text: '0' }),
    check('failover: writes failed and sent again, all kills', '', failovers.reduce((n, f) => n + errorCount(f.failures), 0)),
  ];
}

export function leaseChecks(ctx: BenchContext, watch: LeaseWatch, unplanned: LeaseChange[]): Check[] {
  const { rate } = ctx.scale.progress;
  const left = (phase: string) => watch.leastLeftMs[phase];
  const line = (phase: string, what: string) => (left(phase) === undefined ? [] : [check(`lease: least time left before it expired, ${what}`, 'ms', left(phase)!)]);
  return [
    check('lease: leaders lost during the progress and fan-out load (no kill)', '', unplanned.length, null, { max: 0, text: '0' }),
    ...line(`progress at ${rate}/s, cluster`, `cluster rounds at ${rate}/s`),
    ...line('progress at saturation, cluster', 'cluster rounds at saturation'),
    ...line(`fan-out at ${ctx.scale.cluster.fanout.rate}/s, cluster`, `cluster fan-out rounds`),
    ...line('fan-out, subscribing', `while the subscribers' processes start and ${ctx.scale.cluster.nodes * ctx.scale.cluster.fanout.subscribersPerNode} subscribers connect`),
    ...line(`progress at ${rate}/s, single`, 'cluster idle (single-hub rounds)'),
  ];
}
