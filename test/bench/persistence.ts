import { statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Hub } from '../../server/hub.ts';
import { HubOptions } from '../../server/options.ts';
import { EmbeddedStore } from '../../server/store/embedded-store.ts';
import { SNAPSHOT_FILE } from '../../server/store/snapshot.ts';
import type { Assignment } from '../../shared/schemas/work-order.ts';
import { RegisterAgentInput } from '../../shared/schemas/agent.ts';
import { Histogram } from './histogram.ts';
import { dataDir, type BenchContext } from './launch.ts';
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
    readonly hub: Hub,
    readonly store: EmbeddedStore,
    readonly dir: string,
  ) {
    hub.onCommit((batch) => {
      for (const effect of batch.effects) if (effect.type === 'offer') this.offers.set(effect.agentId, effect.assignment);
    });
  }

  static async open(ctx: BenchContext, orders: number, agents: number): Promise<CoreRig> {
    const dir = dataDir(ctx, `persist-${orders}`);
    const defaults = HubOptions.parse({});
    // No automatic snapshot while measuring: the snapshot is measured on its own.
    const store = new EmbeddedStore({ dataDir: dir, fsync: defaults.fsync, snapshotAfterBytes: Number.MAX_SAFE_INTEGER, onWarning: (m) => ctx.log(`warning: ${m}`) });
    const hub = await Hub.open({
      store,
      settings: {
        outputRoot: join(dir, 'workflows'),
        kpiHistoryLimit: defaults.kpiHistoryLimit,
        dataHistoryLimit: defaults.dataHistoryLimit,
        agingMs: defaults.agingMs,
        graceMs: defaults.graceMs,
        backoffBaseMs: defaults.backoffBaseMs,
        backoffMaxMs: defaults.backoffMaxMs,
      },
    });
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

/** Runs `total` operations, one chain per agent, and returns µs of wall time and of CPU per operation. */
async function timed(rig: CoreRig, total: number, op: (actor: Actor, n: number) => Promise<unknown>): Promise<{ wallUs: number; cpuUs: number }> {
  let next = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    rig.actors.map(async (actor) => {
      while (next < total) await op(actor, next++);
    }),
  );
  await rig.hub.settle();
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { wallUs: round((wall * 1000) / total, 1), cpuUs: round((used.user + used.system) / total, 1) };
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

/**
 * Scenario 4: persistence, in-process with the real Hub core and EmbeddedStore. The cost of a
 * change with a small and a large state, and the event loop while a snapshot of the large one
 * is taken under load.
 */
export async function runPersistence(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { sizes, agents, progressChanges, completions, snapshotLoadRate } = ctx.scale.persistence;
  const costs: Record<number, { progress: { wallUs: number; cpuUs: number }; complete: { wallUs: number; cpuUs: number }; preloadMs: number }> = {};
  const details: Record<string, unknown> = {};
  let snapshot: Record<string, number> = {};
  for (const size of sizes) {
    ctx.log(`persistence: ${size} work orders`);
    const preloadStart = performance.now();
    const rig = await CoreRig.open(ctx, size, agents);
    const preloadMs = performance.now() - preloadStart;
    try {
      // A first pass warms the JIT; the second is measured.
      await timed(rig, Math.min(1000, progressChanges), (actor, n) => rig.progress(actor, n));
      const progress = await timed(rig, progressChanges, (actor, n) => rig.progress(actor, n));
      const complete = await timed(rig, Math.min(completions, size - 2 * agents), (actor) => rig.completeAndTakeNext(actor));
      costs[size] = { progress, complete, preloadMs: round(preloadMs) };
      if (size === sizes[sizes.length - 1]) snapshot = await measureSnapshot(ctx, rig, snapshotLoadRate);
    } finally {
      await rig.close();
    }
  }
  const small = costs[sizes[0]!]!;
  const large = costs[sizes[sizes.length - 1]!]!;
  const [s, l] = [sizes[0]!.toLocaleString('en-US'), sizes[sizes.length - 1]!.toLocaleString('en-US')];
  details.costs = costs;
  details.snapshot = snapshot;
  return {
    name: 'persistence',
    title: '4. Persistence',
    checks: [
      check(`progress: µs per change at ${l} orders (raw column: at ${s})`, 'µs', large.progress.wallUs, small.progress.wallUs, { ratioMax: 1.5, text: `≤ 1.5 × cost at ${s}` }),
      check(`progress: CPU µs per change at ${l} (raw column: at ${s})`, 'µs', large.progress.cpuUs, small.progress.cpuUs),
      check(`complete + next offer + accept: µs at ${l} (raw column: at ${s})`, 'µs', large.complete.wallUs, small.complete.wallUs, { ratioMax: 1.5, text: `≤ 1.5 × cost at ${s}` }),
      check(`snapshot of ${l} orders: event-loop delay p99`, 'ms', snapshot.eldP99 ?? 0, snapshot.idleEldP99 ?? null),
      check(`snapshot of ${l} orders: event-loop delay max`, 'ms', snapshot.eldMax ?? 0, snapshot.idleEldMax ?? null, { max: 50, text: '≤ 50 ms' }),
      check(`snapshot of ${l} orders: duration`, 'ms', snapshot.durationMs ?? 0),
      check(`progress ack p99 during the snapshot at ${snapshotLoadRate}/s`, 'ms', snapshot.ackP99 ?? 0),
    ],
    details,
    notes: [
      `In-process: Hub.open on an EmbeddedStore in a temp directory (fsync off, the default), ${agents} agents each running one order, commands through Hub.dispatch with one in flight per agent.`,
      'The raw column of the first rows holds the same cost with the small state; the ratio is the growth with state size.',
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
  const durationMs = performance.now() - start;
  eld.disable();
  const ack = (await load.stop()).summary();
  const during = eldMs(eld);
  return {
    durationMs: round(durationMs),
    eldP99: during.p99,
    eldMax: during.max,
    idleEldP99: idle.p99,
    idleEldMax: idle.max,
    ackP99: ack.p99,
    ackMax: ack.max,
    snapshotBytes: statSync(join(rig.dir, SNAPSHOT_FILE)).size,
  };
}
