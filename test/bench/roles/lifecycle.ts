import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Socket } from 'socket.io-client';
import { connectAgent, connectControl, type AgentClient, type ControlClient, type WorkflowHandle } from '../../../client-sdk/index.ts';
import { Histogram } from '../histogram.ts';
import { epochMs, runClosedLoop, runOpenLoop } from '../open-loop.ts';
import { BENCH_TASK, BENCH_TOKENS, LONG_TIMEOUTS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';

/** What the creator puts in each order, so that whoever receives it knows when it was due. */
interface Stamp {
  i: number;
  t: number;
}

/** Counts deliveries (creation → agent) and completions during a run. */
class Tally {
  delivery = new Histogram();
  completed = 0;
  lastCompletion = 0;
  windowStart = 0;
  windowEnd = Infinity;
  completedInWindow = 0;

  /** Orders numbered below this are the warm-up: delivered, not counted. */
  firstCounted = 0;

  received(stamp: Stamp | undefined): void {
    if (stamp && typeof stamp.t === 'number' && stamp.i >= this.firstCounted) this.delivery.recordMs(epochMs() - stamp.t);
  }

  complete(): void {
    const now = epochMs();
    this.completed++;
    this.lastCompletion = now;
    if (now >= this.windowStart && now < this.windowEnd) this.completedInWindow++;
  }

  reset(): void {
    Object.assign(this, new Tally());
  }
}

export interface LifecycleOptions {
  url: string;
  agents: number;
  /** Agent ids are `${prefix}-${n}`: a new prefix per round keeps rounds apart. */
  prefix: string;
  rate: number;
  durationMs: number;
  /** At the start of the open loop, not counted (see runOpenLoop). */
  warmupMs: number;
  /** The saturation run: creations in flight and how long. */
  saturate: { concurrency: number; durationMs: number; warmupMs: number };
}

/** Waits until `count` completions or `ms` passed. */
async function settle(tally: Tally, count: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (tally.completed < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * Runs the saturation phase, then the open loop, with `create(stamp)`, and reports both.
 * Saturation first: it also brings both ends out of their cold start before latency is measured.
 */
async function measure(tally: Tally, options: LifecycleOptions, create: (stamp: Stamp) => Promise<void>) {
  const start = epochMs();
  tally.windowStart = start + options.saturate.warmupMs;
  tally.windowEnd = tally.windowStart + options.saturate.durationMs;
  let n = 0;
  const closed = await runClosedLoop({
    ...options.saturate,
    send: (_i, done) => create({ i: n++, t: epochMs() }).then(() => done(), (error: { code?: string }) => done(error.code ?? 'ERROR')),
  });
  await settle(tally, n, 10_000);
  const saturation = { completedPerSecond: (tally.completedInWindow * 1000) / options.saturate.durationMs, createdPerSecond: closed.perSecond, errors: closed.errors };

  tally.reset();
  const openStart = epochMs() + 20;
  // The generator's own stalls during the open loop: they delay sends and receipts alike.
  const delay = monitorEventLoopDelay({ resolution: 2 });
  delay.enable();
  tally.firstCounted = Math.round((options.rate * options.warmupMs) / 1000);
  let created = 0;
  const open = await runOpenLoop({
    startEpochMs: openStart,
    rate: options.rate,
    durationMs: options.durationMs,
    warmupMs: options.warmupMs,
    send: (i, intended, done) =>
      create({ i, t: intended }).then(
        () => (created++, done()),
        (error: { code?: string }) => done(error.code ?? 'ERROR'),
      ),
  });
  delay.disable();
  await settle(tally, created, 10_000);
  const openRun = {
    generatorLoopDelay: { p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 },
    sendLag: open.sendLag.summary(),
    created,
    createErrors: open.errors,
    completed: tally.completed,
    completedPerSecond: (tally.completed * 1000) / Math.max(1, tally.lastCompletion - openStart),
    createAck: open.latency.toJSON(),
    delivery: tally.delivery.toJSON(),
  };
  return { open: openRun, saturation };
}

/**
 * The assignment lifecycle through the product: a control client creates work orders (open
 * loop); SDK agents get them pushed, accept, report progress once and complete.
 */
export async function hubLifecycle(options: LifecycleOptions) {
  const tally = new Tally();
  const control: ControlClient = await connectControl({ url: options.url, token: BENCH_TOKENS.admin, requestTimeoutMs: 60_000 });
  const agents: AgentClient[] = [];
  try {
    const wf: WorkflowHandle = await control.createWorkflow({ userQuery: 'bench: assignment lifecycle' });
    await wf.start();
    for (let i = 0; i < options.agents; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, options.agents - i) }, (_, k) =>
          connectAgent({ url: options.url, token: BENCH_TOKENS.agent, agentId: `${options.prefix}-${i + k}`, agentType: 'bench', maxConcurrentTasks: 1, requestTimeoutMs: 60_000 }),
        ),
      );
      agents.push(...batch);
    }
    for (const agent of agents) {
      agent.on('report', (report) => report.accepted && report.outcome === 'completed' && tally.complete());
      await agent.onTask(BENCH_TASK, async (task, ctx) => {
        tally.received(task.input as Stamp);
        await ctx.progress(50, 'halfway');
        return { result: { ok: true } };
      });
    }
    const create = async (stamp: Stamp) => {
      await wf.createWorkOrder({ taskType: BENCH_TASK, description: `bench order ${stamp.i}`, input: stamp, timeouts: LONG_TIMEOUTS });
    };
    return await measure(tally, options, create);
  } finally {
    for (const agent of agents) agent.close();
    control.close();
  }
}

/**
 * The same messages over bare socket.io: the raw server acks each creation and pushes an offer of
 * the same shape to the next agent, which acks it, then sends one progress and one completion.
 */
export async function rawLifecycle(options: LifecycleOptions) {
  const tally = new Tally();
  const [control] = await openSockets(options.url, '/control', BENCH_TOKENS.admin, 1);
  const agents: Socket[] = await openSockets(options.url, '/agent', BENCH_TOKENS.agent, options.agents);
  try {
    for (const socket of agents) {
      socket.on('assignment', (assignment: { input: Stamp; workflowId: string; workOrderId: string; attemptToken: string }, ack: (reply: unknown) => void) => {
        tally.received(assignment.input);
        ack({ accept: true });
        const ref = { workflowId: assignment.workflowId, workOrderId: assignment.workOrderId, attemptToken: assignment.attemptToken };
        void ask(socket, 'task.progress', { ...ref, progress: 50, message: 'halfway' })
          .then(() => ask(socket, 'task.complete', { ...ref, result: { ok: true } }))
          .then(() => tally.complete());
      });
    }
    const create = async (stamp: Stamp) => {
      const reply = await ask(control!, 'workOrder.create', { workflowId: 'wf_AAAAAAAAAAAA', taskType: BENCH_TASK, description: `bench order ${stamp.i}`, input: stamp, timeouts: LONG_TIMEOUTS });
      if (!reply.ok) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
    };
    return await measure(tally, options, create);
  } finally {
    for (const socket of [control!, ...agents]) socket.disconnect();
  }
}
