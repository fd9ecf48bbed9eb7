import { join } from 'node:path';
import { HubOptions } from '../../server/options.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { merged } from './baseline.ts';
import { failoverChecks, fanoutChecks, leaseChecks, progressChecks } from './cluster-checks.ts';
import { FAILOVER_BOUND_MS, killLeaders, type Failover } from './cluster-failover.ts';
import { fanoutRounds, progressRounds, type ClusterSide, type Subscribers } from './cluster-load.ts';
import { BenchCluster } from './cluster-rig.ts';
import { ClusterSideLoad, type Move } from './cluster-side.ts';
import { withTimeout } from './deadline.ts';
import { hubOptionsOverride, startGenerator, startHub, stopAll, type BenchContext } from './launch.ts';
import { LeaseWatch, type LeaseChange } from './lease-watch.ts';
import { epochMs } from './open-loop.ts';
import { postmasterPid } from './process-tree-cpu.ts';
import type { BenchChild } from './processes.ts';
import { createProgressWorkflow } from './progress.ts';
import { round, type ScenarioResult } from './report.ts';
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
  const startedEpochMs = epochMs();
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
  let watch: LeaseWatch | undefined;
  let single: BenchChild | undefined;
  let agents: BenchChild | undefined;
  let monitors: BenchChild[] = [];
  let writer: BenchChild | undefined;
  try {
    ctx.log(`cluster: ${nodeCount} nodes on PostgreSQL (leaseMs ${lease.leaseMs}, renew ${lease.leaseRenewMs}, check ${lease.leaseCheckMs}) and a single hub`);
    const database = await postgres.newDatabase();
    cluster = await BenchCluster.start(ctx, database, nodeCount, failover.lease ?? {});
    watch = await LeaseWatch.start(database);
    const phase = (name: string) => watch!.phase(name);
    const startedSingle = await startHub(ctx, 'single');
    single = startedSingle.hub;
    const singleUrl = startedSingle.ready.url;
    const singleWorkflow = await createProgressWorkflow(singleUrl, 'cluster: single hub', agentCount);
    agents = await startGenerator('agents');
    await agents.request('agents.connect', { pool: 'single', url: singleUrl, count: agentCount, prefix: 'agent', taskType: BENCH_TASK, takeWork: true });
    const load = await ClusterSideLoad.start(cluster, agents, agentCount, postmasterPid(join(postgres.dir, 'data')));
    const singleSide = { server: single, followers: [] };

    const progress = await progressRounds(ctx, { single: async () => singleSide, cluster: () => load.ready() }, agents, phase);

    ctx.log(`cluster: fan-out: ${fanout.subscribersPerNode} subscribers on each node and on the single hub`);
    phase('fan-out, subscribing');
    const subscribers: Record<ClusterSide, Subscribers[]> = { single: [], cluster: [] };
    const start = async (side: ClusterSide, node: string) => {
      const process = await startGenerator(`monitors ${node}`);
      monitors.push(process);
      subscribers[side].push({ process, node, role: side === 'single' ? 'single' : 'follower' });
    };
    await Promise.all([start('single', 'single'), ...cluster.urls.map((_, i) => start('cluster', `node-${i + 1}`))]);
    subscribers.cluster.sort((a, b) => a.node.localeCompare(b.node));
    await subscribers.single[0]!.process.request('monitors.connect', { url: singleUrl, count: fanout.subscribersPerNode, doc: singleWorkflow });
    // The cluster's subscribers follow the workflow its agents work on: another one after a move to a new leader.
    let followed = '';
    const clusterSide = async () => {
      const processes = await load.ready();
      if (followed !== load.workflowId) {
        await Promise.all(
          subscribers.cluster.map(async (m, i) => {
            m.role = i === load.leader ? 'leader' : 'follower';
            await m.process.request('monitors.close');
            await m.process.request('monitors.connect', { url: cluster!.urls[i], count: fanout.subscribersPerNode, doc: load.workflowId });
          }),
        );
        followed = load.workflowId;
      }
      return processes;
    };
    await clusterSide();
    phase('');
    const fan = await fanoutRounds(ctx, { single: async () => singleSide, cluster: clusterSide }, agents, agentCount, subscribers, phase);

    // The failovers kill the leader: the load before them ends here, and the single hub with it.
    await stopAll(...monitors, agents, single);
    monitors = [];
    agents = single = undefined;
    ctx.log(`cluster: failover: ${failover.kills} kills of the leader while a control client writes`);
    phase('failover');
    writer = await startGenerator('writer');
    const writerWorkflow = await createProgressWorkflow(cluster.urls, 'cluster: failover writes', 0);
    await writer.request('writer.start', { urls: cluster.urls, workflowId: writerWorkflow, paceMs: WRITER_PACE_MS, requestTimeoutMs: FAILOVER_BOUND_MS });
    const kills = await killLeaders(ctx, cluster, writer);
    await writer.request('writer.close');
    await watch.stop();
    const unplanned = watch.changes.filter((change) => change.phase !== 'failover');

    return {
      name: 'cluster',
      title: TITLE,
      subject: 'Cluster',
      checks: [...progressChecks(ctx, progress), ...fanoutChecks(ctx, fan), ...leaseChecks(ctx, watch, unplanned), ...failoverChecks(ctx, kills.failovers, kills.failed)],
      details: {
        lease: { leaseMs: lease.leaseMs, leaseRenewMs: lease.leaseRenewMs, leaseCheckMs: lease.leaseCheckMs, leastLeftMs: watch.leastLeftMs, unplannedChanges: unplanned, moves: load.moves },
        progress: {
          open: Object.fromEntries(Object.entries(progress.open).map(([side, rounds]) => [side, rounds.map((p) => ({ latency: merged([p.result.latency]).summary(), achievedPerSecond: p.result.achievedPerSecond, errors: p.result.errors, unanswered: p.result.unanswered, cpu: p.cpu, loopDelay: p.loopDelay, cpuProbe: p.cpuProbe, settleMs: p.settleMs }))])),
          saturation: Object.fromEntries(Object.entries(progress.saturation).map(([side, rounds]) => [side, rounds.map((p) => ({ perSecond: p.result.perSecond, errors: p.result.errors, cpu: p.cpu, cpuProbe: p.cpuProbe, settleMs: p.settleMs }))])),
        },
        fanout: Object.fromEntries(Object.entries(fan).map(([side, f]) => [side, { staleness: f.staleness.summary(), sinceAck: f.sinceAck.summary(), beforeAck: f.beforeAck, byNode: Object.fromEntries(Object.entries(f.byNode).map(([node, h]) => [node, h.summary()])), ack: f.ack.summary(), unseen: f.unseen, resyncs: f.resyncs, patches: f.patches, errors: f.errors, rounds: f.rounds }])),
        failovers: kills.failovers,
        ...(kills.failed ? { failoverError: kills.failed } : {}),
      },
      notes: notes(ctx, lease, kills.failovers, unplanned, load.moves, startedEpochMs),
      durationMs: performance.now() - started,
    };
  } finally {
    await watch?.stop();
    await stopAll(writer, ...monitors, agents, single);
    await cluster?.stop();
    await stopPostgres(postgres);
  }
}

/** Stops and removes the run's PostgreSQL, bounded: a stop that hangs is left to the harness's exit hook. */
async function stopPostgres(postgres: PostgresServer): Promise<void> {
  await withTimeout(postgres.destroy(), 30_000, 'PostgreSQL to stop').catch(() => undefined);
}

function notes(ctx: BenchContext, lease: { leaseMs: number; leaseRenewMs: number; leaseCheckMs: number }, failovers: Failover[], unplanned: LeaseChange[], moves: Move[], startedAt: number): string[] {
  const { agents, rate, rounds, saturation } = ctx.scale.progress;
  const { nodes } = ctx.scale.cluster;
  const { subscribersPerNode, rate: fanRate, rounds: fanRounds } = ctx.scale.cluster.fanout;
  return [
    `${nodes} nodes, each a bench hub (createHub with \`postgres\`) in its own process on this machine, share a PostgreSQL 15 also on it, started by the test harness (fsync off: acknowledged changes reach the OS, as the embedded store's journal without \`fsync\`). The compared column is one hub on the embedded store (no PostgreSQL) in the same run, driven by the same generator processes.`,
    `Progress: scenario 1's load, ${agents} bare-socket agents each running one work order. The cluster's agents are given every node's URL and follow a follower's NOT_LEADER refusal to the leader. ${rounds} rounds at ${rate}/s alternate single hub and cluster, then ${rounds} at saturation (${saturation.concurrency} in flight); after each cluster round the next waits until every follower has the leader's version (the time that takes is shown). Followers' CPU is both followers' together; PostgreSQL's is its postmaster and backends.`,
    `Fan-out: ${subscribersPerNode} subscribers on each node (a subscriber process per node) and ${subscribersPerNode} on the single hub follow the workflow while the same agents send progress to the leader at ${fanRate}/s, ${fanRounds} round${fanRounds === 1 ? '' : 's'} each side, alternating. Staleness runs until a patch carrying an update, or a later update of the same order, reaches a subscriber: from the update's ack at its agent (the target), and, as scenario 3 counts it, from its intended send time, which adds the ack's latency.`,
    `Failover: a control client given every node's URL writes one workflow progress update at a time (the next ${WRITER_PACE_MS} ms after the previous was sent; a failed one is sent again). Each kill waits until one node leads, every node has the leader's version, and ${ctx.scale.cluster.failover.settleMs} ms more; then \`kill -9\` of the leader's pid, timed from just before the signal to the ack of the first write sent after it; then the killed node is started again on its port, as a follower. Lease: leaseMs ${lease.leaseMs}, leaseRenewMs ${lease.leaseRenewMs}, leaseCheckMs ${lease.leaseCheckMs}${ctx.scale.cluster.failover.lease ? '' : ' (the defaults)'}.`,
    `The lease row is read in PostgreSQL every 100 ms throughout: who holds it, and how long its term has left by the database's clock (the leader renews it every leaseRenewMs, so about leaseMs − leaseRenewMs when all is well). A change of holder that no kill caused is a leader lost; the bench then moves the cluster's load to the new leader (a new workflow, new agents) and goes on.`,
    ...unplanned.map((change) => `Leader lost (no kill) during "${change.phase || 'between rounds'}", ${round((change.atEpochMs - startedAt) / 1000, 1)} s into the scenario: ${change.owner} took the lease (epoch ${change.epoch}).`),
    ...(moves.length ? [`The cluster's load moved to a new leader before the next round: ${moves.map((move) => `${move.from} → ${move.to}`).join(', ')}.`] : []),
    ...(failovers.length ? [`Failover times in kill order (ms): ${failovers.map((f) => round(f.ms, 0)).join(', ')}; a surviving node answered as leader after (ms): ${failovers.map((f) => (f.takeoverMs === null ? '—' : round(f.takeoverMs, 0))).join(', ')}.`] : []),
  ];
}
