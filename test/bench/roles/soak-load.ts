import type { Socket } from 'socket.io-client';
import { Histogram, type HistogramData, type LatencySummary } from '../histogram.ts';
import { epochMs, runOpenLoop } from '../open-loop.ts';
import { BENCH_TOKENS, LONG_TIMEOUTS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';

/** The task type of the soak's orders and agents. */
const SOAK_TASK = 'bench.soak';

/** A steady stream of lifecycles: rate, how long, and how many orders make a workflow. */
export interface SoakPhase {
  rate: number;
  durationMs: number;
  ordersPerWorkflow: number;
  /** When the first order is due (epoch ms), so that the runner can sample the hub on the same clock. */
  startEpochMs: number;
}

/** What a soak phase did. */
export interface SoakRun {
  created: number;
  completed: number;
  workflowsCreated: number;
  workflowsCompleted: number;
  /** Refusals by request and code, e.g. { 'workOrder.create NOT_FOUND': 2 }. */
  errors: Record<string, number>;
  completedPerSecond: number;
  /** Intended creation time → the agent's task.complete acknowledged. */
  lifecycle: HistogramData;
  /** The slowest lifecycle of each second of the run, by intended creation time (ms): where stalls fell. */
  slowestBySecond: number[];
  createAck: HistogramData;
  sendLag: LatencySummary;
  elapsedMs: number;
}

/**
 * The soak's clients, over bare sockets: one control connection that creates workflows and work
 * orders and completes each workflow once its orders are done, and agents that accept each order
 * they are offered and complete it at once.
 */
export class SoakLoad {
  private control: Socket | undefined;
  private agents: Socket[] = [];
  private onCompleted: (workflowId: string, intended: number) => void = () => undefined;
  private onError: (what: string) => void = () => undefined;

  /** Connects the control client and registers `agents` agents, one task at a time each. */
  async connect(options: { url: string; agents: number; prefix: string }): Promise<{ agents: number }> {
    [this.control] = await openSockets(options.url, '/control', BENCH_TOKENS.admin, 1);
    this.agents = await openSockets(options.url, '/agent', BENCH_TOKENS.agent, options.agents, { spreadMs: Math.min(options.agents * 10, 5000) });
    await Promise.all(
      this.agents.map(async (socket, i) => {
        socket.on('assignment', (offer: { workflowId: string; workOrderId: string; attemptToken: string; input: { t: number } }, answer: (reply: unknown) => void) => {
          answer({ accept: true });
          const ref = { workflowId: offer.workflowId, workOrderId: offer.workOrderId, attemptToken: offer.attemptToken };
          void ask(socket, 'task.complete', { ...ref, result: { ok: true } }).then((reply) => {
            if (reply.ok) this.onCompleted(offer.workflowId, offer.input.t);
            else this.onError(`task.complete ${reply.error.code}`);
          });
        });
        const reply = await ask(socket, 'agent.register', { agentId: `${options.prefix}-${i}`, agentType: 'bench', taskTypes: [SOAK_TASK], maxConcurrentTasks: 1 });
        if (!reply.ok) throw new Error(`agent.register refused: ${reply.error.code} ${reply.error.message}`);
      }),
    );
    return { agents: this.agents.length };
  }

  /**
   * Creates work orders in an open loop at `rate`, `ordersPerWorkflow` to a started workflow, and
   * completes each workflow (workflow.complete) once the agents have completed all its orders. The
   * next workflow is created while the current one is being filled. Resolves once every order and
   * every workflow is done (or 30 s after the last creation).
   */
  async run(phase: SoakPhase): Promise<SoakRun> {
    const control = this.control;
    if (!control) throw new Error('soak: connect first');
    const errors: Record<string, number> = {};
    const fail = (what: string) => (errors[what] = (errors[what] ?? 0) + 1);
    const request = async (event: string, payload: unknown): Promise<Record<string, unknown> | undefined> => {
      const reply = await ask(control, event, payload);
      if (reply.ok) return reply.data as Record<string, unknown>;
      fail(`${event} ${reply.error.code}`);
      return undefined;
    };

    const workflows: Array<Promise<string | undefined>> = [];
    const workflow = (k: number) =>
      (workflows[k] ??= request('workflow.create', { userQuery: `bench soak: workflow ${k}` }).then(async (created) => {
        const id = (created?.workflow as { id: string } | undefined)?.id;
        if (id && (await request('workflow.start', { workflowId: id }))) return id;
        return undefined;
      }));
    // Orders per workflow where it is not ordersPerWorkflow: known once the creations are over.
    const expected = new Map<string, number>();
    const done = new Map<string, number>();
    const completions: Array<Promise<unknown>> = [];
    const finish = (workflowId: string) => completions.push(request('workflow.complete', { workflowId }));

    const lifecycle = new Histogram();
    const slowestBySecond = Array.from({ length: Math.ceil(phase.durationMs / 1000) }, () => 0);
    let completed = 0;
    let lastCompletion = phase.startEpochMs;
    this.onError = fail;
    this.onCompleted = (workflowId, intended) => {
      const now = epochMs();
      lifecycle.recordMs(now - intended);
      const second = Math.floor((intended - phase.startEpochMs) / 1000);
      if (now - intended > (slowestBySecond[second] ?? Infinity)) slowestBySecond[second] = Math.round(now - intended);
      completed++;
      lastCompletion = now;
      const count = (done.get(workflowId) ?? 0) + 1;
      done.set(workflowId, count);
      if (count === (expected.get(workflowId) ?? phase.ordersPerWorkflow)) finish(workflowId);
    };

    let created = 0;
    const open = await runOpenLoop({
      rate: phase.rate,
      durationMs: phase.durationMs,
      startEpochMs: phase.startEpochMs,
      send: (i, intended, answered) => {
        const k = Math.floor(i / phase.ordersPerWorkflow);
        // The next workflow is ready before its first order is due.
        if (i % phase.ordersPerWorkflow === 0) void workflow(k + 1);
        void workflow(k).then(async (workflowId) => {
          if (!workflowId) return answered('NO_WORKFLOW');
          const reply = await ask(control, 'workOrder.create', { workflowId, taskType: SOAK_TASK, description: `soak order ${i}`, input: { t: intended }, timeouts: LONG_TIMEOUTS });
          if (!reply.ok) return answered(reply.error.code);
          created++;
          answered();
        });
      },
    });
    const deadline = Date.now() + 30_000;
    while (completed < created && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));

    // Every workflow gets its order count now; those complete already (the last, partly filled
    // one, and the one made ready for orders that never came) are completed here.
    const total = open.scheduled;
    const ids = await Promise.all(workflows);
    ids.forEach((id, k) => {
      if (!id) return;
      const orders = Math.max(0, Math.min(phase.ordersPerWorkflow, total - k * phase.ordersPerWorkflow));
      if (orders < phase.ordersPerWorkflow) {
        expected.set(id, orders);
        if ((done.get(id) ?? 0) >= orders) finish(id);
      }
    });
    const completedWorkflows = (await Promise.all(completions)).filter(Boolean).length;
    for (const [code, count] of Object.entries(open.errors)) errors[`workOrder.create ${code}`] = (errors[`workOrder.create ${code}`] ?? 0) + count;
    this.onCompleted = () => undefined;
    return {
      created,
      completed,
      workflowsCreated: ids.filter(Boolean).length,
      workflowsCompleted: completedWorkflows,
      errors,
      completedPerSecond: (completed * 1000) / Math.max(1, lastCompletion - phase.startEpochMs),
      lifecycle: lifecycle.toJSON(),
      slowestBySecond,
      createAck: open.latency.toJSON(),
      sendLag: open.sendLag.summary(),
      elapsedMs: open.elapsedMs,
    };
  }

  close(): void {
    for (const socket of [...(this.control ? [this.control] : []), ...this.agents]) socket.disconnect();
    this.control = undefined;
    this.agents = [];
  }
}
