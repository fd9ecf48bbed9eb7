import { statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import type { StateWriter } from '../../server/state-writer.ts';
import { EmbeddedStore } from '../../server/store/embedded-store.ts';
import { SNAPSHOT_FILE } from '../../server/store/snapshot.ts';
import type { Assignment } from '../../shared/schemas/work-order.ts';
import { RegisterAgentInput } from '../../shared/schemas/agent.ts';
import { Histogram } from './histogram.ts';
import { openCoreHub } from './core-hub.ts';
import type { BenchContext } from './launch.ts';
import { epochMs } from './open-loop.ts';
import { check, round, type ScenarioResult } from './report.ts';
import { BENCH_TASK, preloadWorkOrders } from './workload.ts';

type Actor = { role: 'agent'; name: string; agentId: string };

/** The hub's core on an embedded store in a temp directory, with agents each running one order. */
class CoreRig {
  readonly offers = new Map<string, Assignment>();
  readonly running = new Map<string, Assignment>();
  readonly actors: Actor[] = [];

  private constructor(
    readonly hub: StateWriter,
    readonly store: EmbeddedStore,
    readonly dir: string,
  ) {
    hub.onCommit((batch) => {
      for (const effect of batch.effects) if (effect.type === 'offer') this.offers.set(effect.agentId, effect.assignment);
    });
  }

  static async open(ctx: BenchContext, orders: number, agents: number): Promise<CoreRig> {
    const { hub, store, dir } = await openCoreHub(ctx, `persist-${orders}`);
    const rig = new CoreRig(hub, store, dir);
    await preloadWorkOrders(hub, { orders, batch: 1000, taskType: BENCH_TASK });
    for (let i = 0; i < agents; i++) {
      const actor: Actor = { role: 'agent', name: 'bench-agent', agentId: `core-${i}` };
      rig.actors.push(actor);
      const input = RegisterAgentInput.parse({ agentId: actor.agentId, agentType: 'bench', taskTypes: [BENCH_TASK], maxConcurrentTasks: 1 });
      await hub.dispatch({ type: 'agent.register', input: { ...input, newConnection: true }, actor });
      await rig.accept(actor);
    }
    return rig;
  }

  /** Accepts the offer the agent holds. */
  async accept(actor: Actor): Promise<void> {
    const offer = this.offers.get(actor.agentId);
    if (!offer) throw new Error(`agent ${actor.agentId} was offered nothing`);
    this.offers.delete(actor.agentId);
    const ref = { workflowId: offer.workflowId, workOrderId: offer.workOrderId, attemptToken: offer.attemptToken };
    await this.hub.dispatch({ type: 'offer.answer', input: { ...ref, accept: true }, actor });
    this.running.set(actor.agentId, offer);
  }

  progress(actor: Actor, n: number) {
    const offer = this.running.get(actor.agentId)!;
    return this.hub.dispatch({
      type: 'task.progress',
      input: { workflowId: offer.workflowId, workOrderId: offer.workOrderId, attemptToken: offer.attemptToken, progress: n % 100, message: `step ${n}` },
      actor,
    });
  }

  /** Completes the agent's order; the hub offers it the next queued one, which it accepts. */
  async completeAndTakeNext(actor: Actor): Promise<void> {
    const offer = this.running.get(actor.agentId)!;
    this.running.delete(actor.agentId);
    await this.hub.dispatch({ type: 'task.complete', input: { workflowId: offer.workflowId, workOrderId: offer.workOrderId, attemptToken: offer.attemptToken, result: { ok: true } }, actor });
    await this.accept(actor);
  }

  close(): Promise<void> {
    return this.hub.close();
  }
}

/** Main-thread GC pauses, as they are reported (start time and duration, ms). */
const gcPauses: Array<{ start: number; duration: number }> = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push({ start: entry.startTime, duration: entry.duration });
  if (gcPauses.length > 10_000) gcPauses.splice(0, 5000);
}).observe({ entryTypes: ['gc'] });

interface Cost {
  wallUs: number;
  cpuUs: number;
  /** Main-thread GC pauses per operation. */
  gcUs: number;
}

/**
 * Runs `total` operations, one chain per agent, and returns µs per operation: wall time, process
 * CPU, and the part of it the main thread spent paused for GC (its amount depends on the heap's
 * size, and in a short round on whether a major collection happened to fall into it).
 */
async function timed(rig: CoreRig, total: number, op: (actor: Actor, n: number) => Promise<unknown>): Promise<Cost> {
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    rig.actors.map(async (actor) => {
      while (next < total) await op(actor, next++);
    }),
  );
  await rig.hub.settle();
  const end = performance.now();
  const used = process.cpuUsage(cpu);
  // GC entries are delivered to the observer in a later task.
  await new Promise((resolve) => setTimeout(resolve, 5));
  const gc = gcPauses.filter((p) => p.start >= start && p.start < end).reduce((sum, p) => sum + p.duration, 0);
  return { wallUs: round(((end - start) * 1000) / total, 1), cpuUs: round((used.user + used.system) / total, 1), gcUs: round((gc * 1000) / total, 1) };
}

/** Progress commands at `rate` per second until stopped; ack latency from the intended time. */
function backgroundLoad(rig: CoreRig, rate: number): { stop(): Promise<Histogram> } {
  const latency = new Histogram();
  const start = epochMs();
  let sent = 0;
  let pending = 0;
  let n = 0;
  const timer = setInterval(() => {
    const due = Math.floor(((epochMs() - start) * rate) / 1000);
    for (; sent < due; sent++) {
      const intended = start + (sent * 1000) / rate;
      pending++;
      void rig.progress(rig.actors[n++ % rig.actors.length]!, n).finally(() => {
        pending--;
        latency.recordMs(epochMs() - intended);
      });
    }
  }, 2);
  return {
    async stop() {
      clearInterval(timer);
      while (pending > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      return latency;
    },
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * Scenario 4: persistence, in-process with the real Hub core and EmbeddedStore. The cost of a
 * change with a small and a large state, and the event loop while a snapshot of the large one
 * is taken under load. The sizes are measured in alternating rounds and the median round is
 * kept, so that a busy machine slows both alike.
 */
export async function runPersistence(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { sizes, agents, progressChanges, completions, snapshotLoadRate, rounds } = ctx.scale.persistence;
  const rigs: CoreRig[] = [];
  const details: Record<string, unknown> = {};
  let snapshot: Record<string, number> = {};
  try {
    const preloadMs: Record<number, number> = {};
    for (const size of sizes) {
      ctx.log(`persistence: loading ${size} work orders`);
      const preloadStart = performance.now();
      rigs.push(await CoreRig.open(ctx, size, agents));
      preloadMs[size] = round(performance.now() - preloadStart);
    }
    // A first pass warms the JIT; then rounds alternate between the sizes.
    for (const rig of rigs) {
      await timed(rig, Math.min(1000, progressChanges), (actor, n) => rig.progress(actor, n));
      await timed(rig, agents, (actor) => rig.completeAndTakeNext(actor));
    }
    const trials = sizes.map(() => ({ progress: [] as Cost[], complete: [] as Cost[] }));
    ctx.log(`persistence: ${rounds} rounds of ${progressChanges / rounds} progress changes and ${completions / rounds} completions per size`);
    for (let r = 0; r < rounds; r++) {
      for (const [i, rig] of rigs.entries()) {
        trials[i]!.progress.push(await timed(rig, Math.round(progressChanges / rounds), (actor, n) => rig.progress(actor, n)));
        trials[i]!.complete.push(await timed(rig, Math.round(completions / rounds), (actor) => rig.completeAndTakeNext(actor)));
      }
    }
    const costs = Object.fromEntries(
      sizes.map((size, i) => {
        const t = trials[i]!;
        // The median round for the work itself; GC over all rounds together, since a major collection lands in one.
        const pick = (list: Cost[]) => ({
          wallUs: median(list.map((x) => x.wallUs)),
          cpuUs: median(list.map((x) => x.cpuUs)),
          workUs: median(list.map((x) => x.cpuUs - x.gcUs)),
          gcUs: round(list.reduce((sum, x) => sum + x.gcUs, 0) / list.length, 1),
        });
        return [size, { progress: pick(t.progress), complete: pick(t.complete), rounds: t, preloadMs: preloadMs[size] }];
      }),
    );
    details.costs = costs;
    snapshot = await measureSnapshot(ctx, rigs[rigs.length - 1]!, snapshotLoadRate);
    details.snapshot = snapshot;
  } finally {
    for (const rig of rigs) await rig.close();
  }
  type Picked = { wallUs: number; cpuUs: number; workUs: number; gcUs: number };
  const costs = details.costs as Record<number, { progress: Picked; complete: Picked }>;
  const small = costs[sizes[0]!]!;
  const large = costs[sizes[sizes.length - 1]!]!;
  const [s, l] = [sizes[0]!.toLocaleString('en-US'), sizes[sizes.length - 1]!.toLocaleString('en-US')];
  return {
    name: 'persistence',
    title: '4. Persistence',
    checks: [
      check(`progress: CPU µs per change, GC pauses aside, at ${l} orders (raw column: at ${s})`, 'µs', large.progress.workUs, small.progress.workUs, { ratioMax: 1.5, text: `≤ 1.5 × cost at ${s}` }),
      check(`progress: GC pause µs per change at ${l} (raw column: at ${s})`, 'µs', large.progress.gcUs, small.progress.gcUs),
      check(`progress: wall µs per change at ${l} (raw column: at ${s})`, 'µs', large.progress.wallUs, small.progress.wallUs),
      check(`complete + next offer + accept: CPU µs, GC pauses aside, at ${l} (raw column: at ${s})`, 'µs', large.complete.workUs, small.complete.workUs, { ratioMax: 1.5, text: `≤ 1.5 × cost at ${s}` }),
      check(`complete + next offer + accept: GC pause µs at ${l} (raw column: at ${s})`, 'µs', large.complete.gcUs, small.complete.gcUs),
      check(`complete + next offer + accept: wall µs at ${l} (raw column: at ${s})`, 'µs', large.complete.wallUs, small.complete.wallUs),
      check(`snapshot of ${l} orders: event-loop delay p99`, 'ms', snapshot.eldP99 ?? 0, snapshot.idleEldP99 ?? null),
      check(`snapshot of ${l} orders: event-loop delay max`, 'ms', snapshot.eldMax ?? 0, snapshot.idleEldMax ?? null, { max: 50, text: '≤ 50 ms' }),
      check(`snapshot of ${l} orders: longest main-thread GC pause meanwhile`, 'ms', snapshot.gcMaxMs ?? 0),
      check(`snapshot of ${l} orders: duration`, 'ms', snapshot.durationMs ?? 0),
      check(`progress ack p99 during the snapshot at ${snapshotLoadRate}/s`, 'ms', snapshot.ackP99 ?? 0),
    ],
    details,
    notes: [
      `In-process: StateWriter.open on an EmbeddedStore in a temp directory (fsync off, the default), ${agents} agents each running one order, commands through StateWriter.dispatch with one in flight per agent.`,
      'CPU µs is process CPU (main thread and the threads writing the journal) per change, less the main thread’s GC pauses in the round: the median of alternating rounds. GC pauses are shown on their own line (mean over the rounds): they grow with the heap, which holds the whole state, and a round of a few hundred completions may or may not contain a major collection.',
      'The raw column of the cost rows holds the same cost with the small state; the ratio is the growth with state size.',
      `Event-loop delay: monitorEventLoopDelay (1 ms resolution) while store.snapshot() runs with progress commands at ${snapshotLoadRate}/s; the raw column holds the same load without a snapshot.`,
    ],
    durationMs: performance.now() - started,
  };
}

/** Event-loop delay under a steady load, without and then with a snapshot running. */
async function measureSnapshot(ctx: BenchContext, rig: CoreRig, rate: number): Promise<Record<string, number>> {
  ctx.log('persistence: snapshot under load');
  const eldMs = (h: ReturnType<typeof monitorEventLoopDelay>) => ({ p99: round(h.percentile(99) / 1e6, 2), max: round(h.max / 1e6, 2) });
  let load = backgroundLoad(rig, rate);
  let eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  eld.disable();
  await load.stop();
  const idle = eldMs(eld);

  load = backgroundLoad(rig, rate);
  await new Promise((resolve) => setTimeout(resolve, 200));
  eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const start = performance.now();
  await rig.store.snapshot();
  const end = performance.now();
  const durationMs = end - start;
  eld.disable();
  const ack = (await load.stop()).summary();
  const during = eldMs(eld);
  const pauses = gcPauses.filter((p) => p.start >= start && p.start < end).map((p) => p.duration);
  return {
    durationMs: round(durationMs),
    eldP99: during.p99,
    eldMax: during.max,
    idleEldP99: idle.p99,
    idleEldMax: idle.max,
    ackP99: ack.p99,
    ackMax: ack.max,
    /** The longest main-thread GC pause while the snapshot ran, and their sum. */
    gcMaxMs: round(Math.max(0, ...pauses), 2),
    gcTotalMs: round(pauses.reduce((a, b) => a + b, 0), 2),
    snapshotBytes: statSync(join(rig.dir, SNAPSHOT_FILE)).size,
  };
}
