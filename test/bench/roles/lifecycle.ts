import type { Socket } from 'socket.io-client';
import { connectAgent, connectControl, type AgentClient, type ControlClient } from '../../../client-sdk/index.ts';
import { Histogram, type HistogramData, type LatencySummary } from '../histogram.ts';
import { epochMs, runClosedLoop, runOpenLoop } from '../open-loop.ts';
import { BENCH_TASK, BENCH_TOKENS, LONG_TIMEOUTS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';

/** What the creator puts in each order, so that whoever receives it knows when it was due. */
interface Stamp {
  i: number;
  t: number;
}

/** Counts deliveries (creation → agent) and completions during a phase. */
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

/** A lifecycle driver against one server: a control connection and agents, kept across phases. */
export interface LifecycleRig {
  readonly tally: Tally;
  /** Creates one work order carrying `stamp`; rejects with the error's code. */
  create(stamp: Stamp): Promise<void>;
  close(): void;
}

export interface RigOptions {
  url: string;
  agents: number;
  /** Agent ids are `${prefix}-${n}`. */
  prefix: string;
}

/** An open-loop phase at `rate`, whose first `warmupMs` are not counted (see runOpenLoop). */
export interface OpenPhase {
  rate: number;
  durationMs: number;
  warmupMs: number;
}

/** A saturation phase: `concurrency` creations in flight for `durationMs` after `warmupMs`. */
export interface SaturationPhase {
  concurrency: number;
  durationMs: number;
  warmupMs: number;
}

/** What an open-loop phase measured. */
export interface OpenLifecycle {
  created: number;
  createErrors: Record<string, number>;
  completed: number;
  completedPerSecond: number;
  createAck: HistogramData;
  delivery: HistogramData;
  sendLag: LatencySummary;
}

/** What a saturation phase measured. */
export interface SaturatedLifecycle {
  completedPerSecond: number;
  createdPerSecond: number;
  errors: Record<string, number>;
}

/** Waits until `count` completions or `ms` passed. */
async function settle(tally: Tally, count: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (tally.completed < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** Creates orders in an open loop and reports creation → agent delivery, once all completed. */
export async function runOpenPhase(rig: LifecycleRig, phase: OpenPhase): Promise<OpenLifecycle> {
  const { tally } = rig;
  tally.reset();
  tally.firstCounted = Math.round((phase.rate * phase.warmupMs) / 1000);
  const openStart = epochMs() + 20;
  let created = 0;
  const open = await runOpenLoop({
    startEpochMs: openStart,
    ...phase,
    send: (i, intended, done) =>
      rig.create({ i, t: intended }).then(
        () => (created++, done()),
        (error: { code?: string }) => done(error.code ?? 'ERROR'),
      ),
  });
  await settle(tally, created, 10_000);
  return {
    created,
    createErrors: open.errors,
    completed: tally.completed,
    completedPerSecond: (tally.completed * 1000) / Math.max(1, tally.lastCompletion - openStart),
    createAck: open.latency.toJSON(),
    delivery: tally.delivery.toJSON(),
    sendLag: open.sendLag.summary(),
  };
}

/** Keeps `concurrency` creations in flight and reports completions per second in the window. */
export async function runSaturationPhase(rig: LifecycleRig, phase: SaturationPhase): Promise<SaturatedLifecycle> {
  const { tally } = rig;
  tally.reset();
  tally.windowStart = epochMs() + phase.warmupMs;
  tally.windowEnd = tally.windowStart + phase.durationMs;
  let n = 0;
  const closed = await runClosedLoop({
    ...phase,
    send: (_i, done) => rig.create({ i: n++, t: epochMs() }).then(() => done(), (error: { code?: string }) => done(error.code ?? 'ERROR')),
  });
  await settle(tally, n, 10_000);
  return { completedPerSecond: (tally.completedInWindow * 1000) / phase.durationMs, createdPerSecond: closed.perSecond, errors: closed.errors };
}

/**
 * The assignment lifecycle through the product: a control client creates work orders in one
 * started workflow; SDK agents get them pushed, accept, report progress once and complete.
 */
export async function hubRig(options: RigOptions): Promise<LifecycleRig> {
  const tally = new Tally();
  const control: ControlClient = await connectControl({ url: options.url, token: BENCH_TOKENS.admin, requestTimeoutMs: 60_000 });
  const agents: AgentClient[] = [];
  const close = () => {
    for (const agent of agents) agent.close();
    control.close();
  };
  try {
    const wf = await control.createWorkflow({ userQuery: 'bench: assignment lifecycle' });
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
    return { tally, create, close };
  } catch (error) {
    close();
    throw error;
  }
}

/**
 * The same messages over bare socket.io: the raw server acks each creation and pushes an offer of
 * the same shape to the next agent, which acks it, then sends one progress and one completion.
 */
export async function rawRig(options: RigOptions): Promise<LifecycleRig> {
  const tally = new Tally();
  const [control] = await openSockets(options.url, '/control', BENCH_TOKENS.admin, 1);
  const agents: Socket[] = await openSockets(options.url, '/agent', BENCH_TOKENS.agent, options.agents);
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
  return {
    tally,
    create,
    close: () => {
      for (const socket of [control!, ...agents]) socket.disconnect();
    },
  };
}
