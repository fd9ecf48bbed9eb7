import { clusterInfo } from '../helpers/cluster-info.ts';
import type { BenchCluster } from './cluster-rig.ts';
import { withTimeout } from './deadline.ts';
import type { BenchContext } from './launch.ts';
import { epochMs } from './open-loop.ts';
import type { BenchChild } from './processes.ts';
import { BENCH_TOKENS } from './workload.ts';

/** How long after a kill the bench waits for a write acknowledged by the new leader before it gives up on the failovers. */
export const FAILOVER_BOUND_MS = 60_000;

/** One kill of the leader and what followed. */
export interface Failover {
  killed: string;
  /** The node the first acknowledged write came from. */
  newLeader: string;
  /** kill → the first acknowledgement of a write sent after the kill (ms). */
  ms: number;
  /** kill → a surviving node first answering GET /cluster as the leader (ms). */
  takeoverMs: number | null;
  /** Writes that failed meanwhile, by code, each sent again. */
  failures: Record<string, number>;
}

/**
 * Kills the leader `kills` times with `kill -9` while `writer` (a generator's FailoverWriter,
 * started on every node's URL) writes; each time measures from the kill to the first ack of a
 * write sent after it, then starts the killed node again, as a follower. Before each kill, the
 * cluster has one leader, every node has caught up with it, and it has settled for `settleMs`.
 * Stops at the first kill not followed by an ack within FAILOVER_BOUND_MS: `failed` says so.
 */
export async function killLeaders(ctx: BenchContext, cluster: BenchCluster, writer: BenchChild): Promise<{ failovers: Failover[]; failed: string | undefined }> {
  const { kills, settleMs } = ctx.scale.cluster.failover;
  const name = (url: string) => `node-${cluster.urls.indexOf(url) + 1}`;
  const failovers: Failover[] = [];
  for (let k = 0; k < kills; k++) {
    const leader = await cluster.leader();
    await cluster.untilCaughtUp(leader);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    // The writer is writing through the leader before the kill.
    await withTimeout(untilAcknowledged(writer), FAILOVER_BOUND_MS, 'a write acknowledged before the kill');
    const killed = cluster.urls[leader]!;
    ctx.log(`cluster: kill ${k + 1}/${kills}: kill -9 of the leader, ${name(killed)}`);
    const killedAt = await cluster.kill(leader);
    const survivors = cluster.urls.filter((url) => url !== killed);
    const watching = { stop: false };
    const takeover = untilLeads(survivors, watching);
    try {
      const ack = await writer.request<{ at: number; url: string; failures: Record<string, number> }>('writer.firstAckAfter', { afterEpochMs: killedAt, timeoutMs: FAILOVER_BOUND_MS });
      const takenAt = await Promise.race([takeover, new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000))]);
      failovers.push({ killed: name(killed), newLeader: name(ack.url), ms: ack.at - killedAt, takeoverMs: takenAt === null ? null : takenAt - killedAt, failures: ack.failures });
      ctx.log(`cluster: kill ${k + 1}/${kills}: first write acknowledged by ${name(ack.url)} ${Math.round(ack.at - killedAt)} ms after the kill`);
    } catch (error) {
      return { failovers, failed: `kill ${k + 1}: ${(error as Error).message}` };
    } finally {
      watching.stop = true;
    }
    await cluster.startNode(leader);
  }
  return { failovers, failed: undefined };
}

/** Resolves once the writer has an ack newer than its last failover's. */
async function untilAcknowledged(writer: BenchChild): Promise<void> {
  while ((await writer.request<number>('writer.acknowledged')) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** The time (epoch ms) one of `urls` first answers GET /cluster as the leader, looking every 20 ms until `watching.stop`. */
async function untilLeads(urls: string[], watching: { stop: boolean }): Promise<number | null> {
  while (!watching.stop) {
    const infos = await Promise.all(urls.map((url) => clusterInfo(url, BENCH_TOKENS.monitor, 500)));
    if (infos.some((info) => info?.role === 'leader')) return epochMs();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return null;
}
