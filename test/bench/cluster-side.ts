import { clusterInfo } from '../helpers/cluster-info.ts';
import type { SideProcesses } from './cluster-load.ts';
import type { BenchCluster } from './cluster-rig.ts';
import type { BenchChild } from './processes.ts';
import { createProgressWorkflow } from './progress.ts';
import { BENCH_TASK, BENCH_TOKENS } from './workload.ts';

/** A move of the cluster's side to a new leader after one it did not cause. */
export interface Move {
  from: string;
  to: string;
}

/**
 * The cluster's side of the load: a workflow with a work order per agent, the generator's agent
 * pool `cluster` on the leader (given every node's URL), and the processes a round reads. Should
 * the leader lose its lease meanwhile (the bench reports it), `ready()` moves the side to the new
 * one: the old leader closed the agents' sockets, so a new workflow and agents that register
 * there, and the next rounds measure again.
 */
export class ClusterSideLoad {
  readonly moves: Move[] = [];

  private constructor(
    private readonly cluster: BenchCluster,
    private readonly agents: BenchChild,
    private readonly agentCount: number,
    private readonly postgresPid: number,
    public workflowId: string,
    public leader: number,
    private epoch: number,
  ) {}

  /** The workflow and the agents on the cluster's leader. */
  static async start(cluster: BenchCluster, agents: BenchChild, agentCount: number, postgresPid: number): Promise<ClusterSideLoad> {
    const side = new ClusterSideLoad(cluster, agents, agentCount, postgresPid, '', -1, 0);
    await side.lead();
    await side.load('agent');
    return side;
  }

  /** The side's processes, once its agents are on the node that leads now (moving them there if another took over). */
  async ready(): Promise<SideProcesses> {
    const from = { leader: this.leader, epoch: this.epoch };
    // A node that lost its lease and took it again (under a new epoch) closed its writers too.
    if (await this.lead()) {
      this.moves.push({ from: `node-${from.leader + 1} (epoch ${from.epoch})`, to: `node-${this.leader + 1} (epoch ${this.epoch})` });
      await this.agents.request('agents.close', { pool: 'cluster' });
      // Agents of new ids: the old ones still hold their attempts on the new leader.
      await this.load(`agent-moved${this.moves.length}`);
    }
    return this.processes();
  }

  /** The leader, the followers and PostgreSQL; a round waits for the followers to catch up before the next. */
  processes(): SideProcesses {
    const nodes = this.cluster.urls.map((_, i) => i);
    return {
      server: this.cluster.child(this.leader)!,
      followers: nodes.filter((i) => i !== this.leader).map((i) => this.cluster.child(i)!),
      postgresPid: this.postgresPid,
      settle: () => this.cluster.untilCaughtUp(this.leader),
    };
  }

  /** Finds the leader and its epoch; true when either changed. */
  private async lead(): Promise<boolean> {
    const leader = await this.cluster.leader();
    const epoch = (await clusterInfo(this.cluster.urls[leader]!, BENCH_TOKENS.monitor))?.epoch;
    if (epoch === undefined) throw new Error(`the leader node-${leader + 1} does not answer GET /cluster`);
    const changed = leader !== this.leader || epoch !== this.epoch;
    this.leader = leader;
    this.epoch = epoch;
    return changed;
  }

  private async load(prefix: string): Promise<void> {
    this.workflowId = await createProgressWorkflow(this.cluster.urls, `cluster: nodes${this.moves.length ? `, after ${this.moves.length} moves` : ''}`, this.agentCount);
    const reached = await this.agents.request<{ url: string }>('agents.connect', { pool: 'cluster', url: this.cluster.urls, count: this.agentCount, prefix, taskType: BENCH_TASK, takeWork: true });
    if (reached.url !== this.cluster.urls[this.leader]) throw new Error(`the agents given every node's URL ended on ${reached.url}, not on the leader ${this.cluster.urls[this.leader]}`);
  }
}
