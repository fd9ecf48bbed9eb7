import type { HubOptionsInput } from '../../server/index.ts';
import { untilOneLeader, clusterInfo } from '../helpers/cluster-info.ts';
import { freePort } from '../helpers/ports.ts';
import { withTimeout } from './deadline.ts';
import { dataDir, startHub, stopAll, type BenchContext } from './launch.ts';
import { epochMs } from './open-loop.ts';
import type { BenchChild } from './processes.ts';
import { BENCH_TOKENS } from './workload.ts';

/** How long a node may take to start, and a cluster to agree on a leader or catch up. */
const NODE_START_MS = 60_000;
const AGREE_MS = 60_000;

/** One node: its fixed port and data directory, so that it comes back where its clients look for it. */
interface Node {
  name: string;
  options: HubOptionsInput & { port: number; dataDir: string };
  process: BenchChild | undefined;
}

/**
 * A cluster of bench hubs (hub-entry.ts, each in its own process) on one PostgreSQL database, with
 * the bench tokens; nodes can be killed with `kill -9` and started again on the same port.
 */
export class BenchCluster {
  private constructor(
    private readonly ctx: BenchContext,
    private readonly nodes: Node[],
  ) {}

  /** Starts `count` nodes (node-1, node-2, …) on `postgres` with `options` (lease settings, …). */
  static async start(ctx: BenchContext, postgres: string, count: number, options: HubOptionsInput = {}): Promise<BenchCluster> {
    const nodes: Node[] = [];
    for (let i = 1; i <= count; i++) {
      const name = `node-${i}`;
      nodes.push({ name, options: { ...options, postgres, nodeId: name, port: await freePort(), dataDir: dataDir(ctx, name) }, process: undefined });
    }
    const cluster = new BenchCluster(ctx, nodes);
    try {
      await Promise.all(nodes.map((_, i) => cluster.startNode(i)));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Every node's URL, in node order: the list clients are given. */
  get urls(): string[] {
    return this.nodes.map((node) => `http://127.0.0.1:${node.options.port}`);
  }

  /** Node i's process (undefined while it is down). */
  child(i: number): BenchChild | undefined {
    return this.nodes[i]!.process;
  }

  /** The index of the node that leads, once exactly one does and every running node agrees. */
  leader(): Promise<number> {
    return untilOneLeader(this.nodes.map((node, i) => (node.process ? this.urls[i] : undefined)), BENCH_TOKENS.monitor, AGREE_MS);
  }

  /** Resolves once every running node holds the version the leader held when asked (followers caught up). */
  async untilCaughtUp(leader: number): Promise<void> {
    const target = (await clusterInfo(this.urls[leader]!, BENCH_TOKENS.monitor))?.version;
    if (target === undefined) throw new Error(`the leader ${this.nodes[leader]!.name} does not answer GET /cluster`);
    const caughtUp = async () => {
      for (;;) {
        const infos = await Promise.all(this.nodes.map((node, i) => (node.process ? clusterInfo(this.urls[i]!, BENCH_TOKENS.monitor) : undefined)));
        if (this.nodes.every((node, i) => !node.process || (infos[i]?.version ?? -1) >= target)) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await withTimeout(caughtUp(), AGREE_MS, `every node of the cluster to reach version ${target}`);
  }

  /** `kill -9` of node i; resolves with the time of the kill (epoch ms, taken just before the signal) once it is gone. */
  async kill(i: number): Promise<number> {
    const node = this.nodes[i]!;
    if (!node.process) throw new Error(`${node.name} is not running`);
    const at = epochMs();
    await node.process.kill();
    node.process = undefined;
    return at;
  }

  /** Starts node i (again) on its port and data directory; it joins as a follower when another leads. */
  async startNode(i: number): Promise<void> {
    const node = this.nodes[i]!;
    const { hub } = await withTimeout(startHub(this.ctx, node.name, node.options), NODE_START_MS, `${node.name} to listen`);
    node.process = hub;
  }

  /** Stops every running node (a leader gives its lease up). */
  async stop(): Promise<void> {
    await stopAll(...this.nodes.map((node) => node.process));
    for (const node of this.nodes) node.process = undefined;
  }
}
