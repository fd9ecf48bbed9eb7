import { connectAgent, connectControl, type AgentClient, type ControlClient, type WorkflowHandle } from '../../../client-sdk/index.ts';
import { BENCH_TOKENS } from '../workload.ts';
import type { Handler, Job, PeerQueue, PeerSide, Workers } from './peer-load.ts';

/**
 * The hub's side of the peer scenario, through the SDK at its defaults: a control client creates
 * work orders (a queue is a started workflow, a job a work order of task type `peer.<kind>`);
 * workers are agents (connectAgent) with `maxConcurrentTasks` slots.
 */
export class HubPeer implements PeerSide {
  private constructor(
    private readonly url: string,
    private readonly prefix: string,
    private readonly control: ControlClient,
  ) {}

  static async connect(url: string, prefix: string): Promise<HubPeer> {
    return new HubPeer(url, prefix, await connectControl({ url, token: BENCH_TOKENS.admin }));
  }

  async open(kind: string): Promise<PeerQueue> {
    const workflow = await this.control.createWorkflow({ userQuery: `bench: beside BullMQ, ${kind}` });
    await workflow.start();
    return new HubQueue(this.url, `${this.prefix}-${kind}`, `peer.${kind}`, workflow);
  }

  close(): Promise<void> {
    return this.control.close();
  }
}

class HubQueue implements PeerQueue {
  constructor(
    private readonly url: string,
    private readonly agentPrefix: string,
    private readonly taskType: string,
    private readonly workflow: WorkflowHandle,
  ) {}

  private order(job: Job) {
    return { taskType: this.taskType, description: `bench job ${job.i}`, input: job };
  }

  async addBulk(jobs: Job[]): Promise<void> {
    await this.workflow.createWorkOrders(jobs.map((job) => this.order(job)));
  }

  async add(job: Job): Promise<void> {
    await this.workflow.createWorkOrder(this.order(job));
  }

  /** Agents registered with no task type (offered nothing) until run() gives them the handler. */
  async workers(count: number, concurrency: number, handler: Handler, completed: (job: Job) => void): Promise<Workers> {
    const agents: AgentClient[] = await Promise.all(
      Array.from({ length: count }, (_, k) => connectAgent({ url: this.url, token: BENCH_TOKENS.agent, agentId: `${this.agentPrefix}-${k}`, agentType: 'bench', maxConcurrentTasks: concurrency })),
    );
    const failures: string[] = [];
    // The job of each running order, until its completion is acknowledged.
    const running = new Map<string, Job>();
    for (const agent of agents) {
      agent.on('report', (report) => {
        const job = running.get(report.workOrderId);
        running.delete(report.workOrderId);
        if (report.accepted && report.outcome === 'completed' && job) completed(job);
        else failures.push(`work order ${report.workOrderId}: ${report.outcome}, ${report.accepted ? 'accepted' : `refused (${report.code})`}`);
      });
      agent.on('error', (error) => failures.push(`agent: ${error.code} ${error.message}`));
    }
    const { taskType } = this;
    return {
      failures,
      async run() {
        await Promise.all(
          agents.map((agent) =>
            agent.onTask<Job>(taskType, async (task, ctx) => {
              running.set(task.workOrderId, task.input);
              await handler(task.input, (percentage, message) => ctx.progress(percentage, message));
              return { result: { ok: true } };
            }),
          ),
        );
      },
      async close() {
        await Promise.all(agents.map((agent) => agent.close()));
      },
    };
  }

  async close(): Promise<void> {
    // The workflow stays, finished orders and all, as BullMQ keeps its completed jobs.
  }
}
