import type { ClusterInfo, HubOptionsInput, RunningHub } from '../../server/index.ts';
import { HubUnderTest } from '../faults/cluster.ts';
import { clusterInfo as askCluster, untilOneLeader } from './cluster-info.ts';
import { startHub, tempDir, TOKENS } from './hub.ts';
import { untilTrue } from './wait.ts';

/** Lease settings short enough for tests to fail over in a second or two. */
export const FAST_LEASE = { leaseMs: 1500, leaseRenewMs: 300, leaseCheckMs: 150 } as const;

/** Two in-process nodes with `options` (a `postgres` among them): `leader` (n1), leading before `follower` (n2) starts. */
export async function leaderAndFollower(options: HubOptionsInput): Promise<{ leader: RunningHub; follower: RunningHub }> {
  const leader = await startHub({ ...options, nodeId: 'n1' });
  await untilTrue(() => leader.cluster().role === 'leader', 'the first node leads');
  const follower = await startHub({ ...options, nodeId: 'n2' });
  return { leader, follower };
}

/** What a node answers at GET /cluster to the test admin token, or undefined when it does not answer (down, or frozen). */
export function clusterInfo(url: string, timeoutMs = 1000): Promise<ClusterInfo | undefined> {
  return askCluster(url, TOKENS.admin, timeoutMs);
}

/** Nodes of one cluster, each a `switchboard start` process on its own port and data directory. */
export class ClusterUnderTest {
  private constructor(readonly nodes: HubUnderTest[]) {}

  /** Starts `count` nodes on the PostgreSQL database `postgres`, with the test tokens and a fast lease. */
  static async start(postgres: string, count: number, options: HubOptionsInput = {}): Promise<ClusterUnderTest> {
    const nodes = await Promise.all(Array.from({ length: count }, (_, i) => HubUnderTest.create(tempDir(), { postgres, nodeId: `node-${i + 1}`, ...FAST_LEASE, ...options })));
    await Promise.all(nodes.map((node) => node.start()));
    return new ClusterUnderTest(nodes);
  }

  /** Every node's URL: the list clients are given. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** The node that says it leads, once one does (and the others that answer agree). */
  async leader(timeoutMs = 15_000): Promise<HubUnderTest> {
    return this.nodes[await untilOneLeader(this.nodes.map((node) => (node.current ? node.url : undefined)), TOKENS.admin, timeoutMs)]!;
  }

  /** The nodes other than `node`. */
  others(node: HubUnderTest): HubUnderTest[] {
    return this.nodes.filter((other) => other !== node);
  }
}
