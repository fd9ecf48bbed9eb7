import { join } from 'node:path';
import { HubOptions } from '../../server/options.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { meanCpu, merged } from './baseline.ts';
import { FAILOVER_BOUND_MS, killLeaders, type Failover } from './cluster-failover.ts';
import { fanoutRounds, progressRounds, type ClusterSide, type FanoutSide, type ProgressRounds, type Subscribers } from './cluster-load.ts';
import { BenchCluster } from './cluster-rig.ts';
import { withTimeout } from './deadline.ts';
import { hubOptionsOverride, startGenerator, startHub, stopAll, type BenchContext } from './launch.ts';
import { postmasterPid } from './process-tree-cpu.ts';
import type { BenchChild } from './processes.ts';
import { createProgressWorkflow } from './progress.ts';
import { check, round, type Check, type ScenarioResult } from './report.ts';
import { BENCH_TASK } from './workload.ts';

const TITLE = '9. A cluster of three nodes';
/** How long PostgreSQL may take to start (initdb included). */
const POSTGRES_START_MS = 120_000;
/** The pause between a failover writer's writes (ms): one in flight, the next sent this long after the previous one. */
const WRITER_PACE_MS = 5;

/**
 * Scenario 9: a cluster of nodes on PostgreSQL 15 beside a single hub on the embedded store, in
 * the same run: the progress scenario's load on each, then monitor fan-out over every node, then
 * failover, the leader killed with `kill -9` while a control client writes. Skipped, saying why,
 * when PostgreSQL 15 is not installed.
 */
export async function runCluster(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const skip = postgresSkipReason();
  if (skip) {
    ctx.log(`cluster: skipped: ${skip}`);
    return { name: 'cluster', title: TITLE, skipped: skip, checks: [], details: {}, notes: [], durationMs: performance.now() - started };
  }
  const { nodes: nodeCount, fanout, failover } = ctx.scale.cluster;
  const { agents: agentCount } = ctx.scale.progress;
  const lease = HubOptions.parse({ ...failover.lease, ...hubOptionsOverride() });
  ctx.log('cluster: starting PostgreSQL 15');
  const postgres = await withTimeout(startPostgres(), POSTGRES_START_MS, 'PostgreSQL to start');
  let cluster: BenchCluster | undefined;
  let single: BenchChild | undefined;
  let agents: BenchChild | undefined;
  let monitors: BenchChild[] = [];
  let writer: BenchChild | undefined;
  try {
    ctx.log(`cluster: ${nodeCount} nodes on PostgreSQL (leaseMs ${lease.leaseMs}, renew ${lease.leaseRenewMs}, check ${lease.leaseCheckMs}) and a single hub`);
    cluster = await BenchCluster.start(ctx, await postgres.newDatabase(), nodeCount, failover.lease ?? {});
    const startedSingle = await startHub(ctx, 'single');
    single = startedSingle.hub;
    const singleUrl = startedSingle.ready.url;
    const leader = await cluster.leader();
    const [singleWorkflow, clusterWorkflow] = await Promise.all([createProgressWorkflow(singleUrl, 'cluster: single hub', agentCount), createProgressWorkflow(cluster.urls, 'cluster: nodes', agentCount)]);
    agents = await startGenerator('agents');
    const connect = (pool: ClusterSide, url: string | string[]) => agents!.request<{ url: string }>('agents.connect', { pool, url, count: agentCount, prefix: 'agent', taskType: BENCH_TASK, takeWork: true });
    await connect('single', singleUrl);
    const reached = await connect('cluster', cluster.urls);
    if (reached.url !== cluster.urls[leader]) throw new Error(`the agents given every node's URL ended on ${reached.url}, not on the leader ${cluster.urls[leader]}`);
    const nodeIndexes = cluster.urls.map((_, i) => i);
    const sides = {
      single: { server: single, followers: [] },
      cluster: {
        server: cluster.child(leader)!,
        followers: nodeIndexes.filter((i) => i !== leader).map((i) => cluster!.child(i)!),
        postgresPid: postmasterPid(join(postgres.dir, 'data')),
        settle: () => cluster!.untilCaughtUp(leader),
      },
    };

    const progress = await progressRounds(ctx, sides, agents);

    ctx.log(`cluster: fan-out: ${fanout.subscribersPerNode} subscribers on each node and on the single hub`);
    await cluster.untilCaughtUp(leader);
    const subscribers: Record<ClusterSide, Subscribers[]> = { single: [], cluster: [] };
    const subscribe = async (side: ClusterSide, node: string, role: Subscribers['role'], url: string, doc: string) => {
      const process = await startGenerator(`monitors ${node}`);
      monitors.push(process);
      await process.request('monitors.connect', { url, count: fanout.subscribersPerNode, doc });
      subscribers[side].push({ process, node, role });
    };
    await Promise.all([
      subscribe('single', 'single', 'single', singleUrl, singleWorkflow),
      ...nodeIndexes.map((i) => subscribe('cluster', `node-${i + 1}`, i === leader ? 'leader' : 'follower', cluster!.urls[i]!, clusterWorkflow)),
    ]);
    subscribers.cluster.sort((a, b) => a.node.localeCompare(b.node));
    const fan = await fanoutRounds(ctx, sides, agents, agentCount, subscribers);

    // The failovers kill the leader: the load before them ends here, and the single hub with it.
    await stopAll(...monitors, agents, single);
    monitors = [];
    agents = single = undefined;
    ctx.log(`cluster: failover: ${failover.kills} kills of the leader while a control client writes`);
    writer = await startGenerator('writer');
    const writerWorkflow = await createProgressWorkflow(cluster.urls, 'cluster: failover writes', 0);
    await writer.request('writer.start', { urls: cluster.urls, workflowId: writerWorkflow, paceMs: WRITER_PACE_MS, requestTimeoutMs: FAILOVER_BOUND_MS });
    const kills = await killLeaders(ctx, cluster, writer);
    await writer.request('writer.close');

    return {
      name: 'cluster',
      title: TITLE,
      subject: 'Cluster',
      checks: [...progressChecks(ctx, progress), ...fanoutChecks(ctx, fan), ...failoverChecks(ctx, kills.failovers, kills.failed)],
      details: {
        lease: { leaseMs: lease.leaseMs, leaseRenewMs: lease.leaseRenewMs, leaseCheckMs: lease.leaseCheckMs },
        progress: {
          open: Object.fromEntries(Object.entries(progress.open).map(([side, rounds]) => [side, rounds.map((p) => ({ latency: merged([p.result.latency]).summary(), achievedPerSecond: p.result.achievedPerSecond, errors: p.result.errors, unanswered: p.result.unanswered, cpu: p.cpu, loopDelay: p.loopDelay, cpuProbe: p.cpuProbe, settleMs: p.settleMs }))])),
          saturation: Object.fromEntries(Object.entries(progress.saturation).map(([side, rounds]) => [side, rounds.map((p) => ({ perSecond: p.result.perSecond, errors: p.result.errors, cpu: p.cpu, cpuProbe: p.cpuProbe, settleMs: p.settleMs }))])),
        },
        fanout: Object.fromEntries(Object.entries(fan).map(([side, f]) => [side, { staleness: f.staleness.summary(), sinceAck: f.sinceAck.summary(), beforeAck: f.beforeAck, byNode: Object.fromEntries(Object.entries(f.byNode).map(([node, h]) => [node, h.summary()])), ack: f.ack.summary(), unseen: f.unseen, resyncs: f.resyncs, patches: f.patches, errors: f.errors, rounds: f.rounds }])),
        failovers: kills.failovers,
        ...(kills.failed ? { failoverError: kills.failed } : {}),
      },
      notes: notes(ctx, lease, kills.failovers),
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(writer, ...monitors, agents, single);
    await cluster?.stop();
    await stopPostgres(postgres);
  }
}

/** Stops and removes the run's PostgreSQL, bounded: a stop that hangs is left to the harness's exit hook. */
async function stopPostgres(postgres: PostgresServer): Promise<void> {
  await withTimeout(postgres.destroy(), 30_000, 'PostgreSQL to stop').catch(() => undefined);
}

/** The mean of the runs' `perSecond`. */
const meanRate = (runs: Array<{ result: { perSecond: number } }>) => runs.reduce((sum, p) => sum + p.result.perSecond, 0) / Math.max(1, runs.length);
const errorCount = (errors: Record<string, number>) => Object.values(errors).reduce((a, b) => a + b, 0);

/** The server's CPU probe p50 in the round where it was slowest: a round on a slowed CPU shows, whichever side it measured. */
function slowestProbe(progress: ProgressRounds, side: ClusterSide): number {
  return Math.max(...[...progress.open[side], ...progress.saturation[side]].map((p) => p.cpuProbe?.p50 ?? 0));
}

function progressChecks(ctx: BenchContext, progress: ProgressRounds): Check[] {
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

function fanoutChecks(ctx: BenchContext, fan: Record<ClusterSide, FanoutSide>): Check[] {
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
function median(sorted: number[]): number {
  const mid = sorted.length / 2;
  return sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function failoverChecks(ctx: BenchContext, failovers: Failover[], failed: string | undefined): Check[] {
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

function notes(ctx: BenchContext, lease: { leaseMs: number; leaseRenewMs: number; leaseCheckMs: number }, failovers: Failover[]): string[] {
  const { agents, rate, rounds, saturation } = ctx.scale.progress;
  const { nodes } = ctx.scale.cluster;
  const { subscribersPerNode, rate: fanRate, rounds: fanRounds } = ctx.scale.cluster.fanout;
  return [
    `${nodes} nodes, each a bench hub (createHub with \`postgres\`) in its own process on this machine, share a PostgreSQL 15 also on it, started by the test harness (fsync off: acknowledged changes reach the OS, as the embedded store's journal without \`fsync\`). The compared column is one hub on the embedded store (no PostgreSQL) in the same run, driven by the same generator processes.`,
    `Progress: scenario 1's load, ${agents} bare-socket agents each running one work order. The cluster's agents are given every node's URL and follow a follower's NOT_LEADER refusal to the leader. ${rounds} rounds at ${rate}/s alternate single hub and cluster, then ${rounds} at saturation (${saturation.concurrency} in flight); after each cluster round the next waits until every follower has the leader's version (the time that takes is shown). Followers' CPU is both followers' together; PostgreSQL's is its postmaster and backends.`,
    `Fan-out: ${subscribersPerNode} subscribers on each node (a subscriber process per node) and ${subscribersPerNode} on the single hub follow the workflow while the same agents send progress to the leader at ${fanRate}/s, ${fanRounds} round${fanRounds === 1 ? '' : 's'} each side, alternating. Staleness runs until a patch carrying an update, or a later update of the same order, reaches a subscriber: from the update's ack at its agent (the target), and, as scenario 3 counts it, from its intended send time, which adds the ack's latency.`,
    `Failover: a control client given every node's URL writes one workflow progress update at a time (the next ${WRITER_PACE_MS} ms after the previous was sent; a failed one is sent again). Each kill waits until one node leads, every node has the leader's version, and ${ctx.scale.cluster.failover.settleMs} ms more; then \`kill -9\` of the leader's pid, timed from just before the signal to the ack of the first write sent after it; then the killed node is started again on its port, as a follower. Lease: leaseMs ${lease.leaseMs}, leaseRenewMs ${lease.leaseRenewMs}, leaseCheckMs ${lease.leaseCheckMs}${ctx.scale.cluster.failover.lease ? '' : ' (the defaults)'}.`,
    ...(failovers.length ? [`Failover times in kill order (ms): ${failovers.map((f) => round(f.ms, 0)).join(', ')}; a surviving node answered as leader after (ms): ${failovers.map((f) => (f.takeoverMs === null ? '—' : round(f.takeoverMs, 0))).join(', ')}.`] : []),
  ];
}
