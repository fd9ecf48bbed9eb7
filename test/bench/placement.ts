import { performance } from 'node:perf_hooks';
import type { StateWriter } from '../../server/state-writer.ts';
import { RegisterAgentInput } from '../../shared/schemas/agent.ts';
import type { Assignment } from '../../shared/schemas/work-order.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { openCoreHub } from './core-hub.ts';
import type { BenchContext } from './launch.ts';
import { check, round, type ScenarioResult } from './report.ts';
import { BENCH_TASK, LONG_TIMEOUTS, preloadWorkOrders } from './workload.ts';

type Actor = { role: 'agent'; name: string; agentId: string };
const ADMIN = { role: 'admin', name: 'bench-admin' } as const;

/** The hub's core on an embedded store, with `agents` idle agents of one task type and an empty started workflow. */
class PlacementRig {
  /** Offers, and the agent each went to, by the work order they are for. */
  private readonly offers = new Map<string, { agentId: string; assignment: Assignment }>();
  private next = 0;

  private constructor(
    readonly hub: StateWriter,
    readonly workflowId: string,
  ) {
    hub.onCommit((batch) => {
      for (const effect of batch.effects) if (effect.type === 'offer') this.offers.set(effect.assignment.workOrderId, { agentId: effect.agentId, assignment: effect.assignment });
    });
  }

  static async open(ctx: BenchContext, agents: number): Promise<PlacementRig> {
    const { hub } = await openCoreHub(ctx, `placement-${agents}`);
    const workflowId = await preloadWorkOrders(hub, { orders: 0, batch: 1000, taskType: BENCH_TASK });
    // Registered 100 at a time: they share journal writes, and none has work yet.
    for (let i = 0; i < agents; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, agents - i) }, (_, k) => {
          const agentId = `idle-${i + k}`;
          const input = RegisterAgentInput.parse({ agentId, agentType: 'bench', taskTypes: [BENCH_TASK], maxConcurrentTasks: 1 });
          return hub.dispatch({ type: 'agent.register', input: { ...input, newConnection: true }, actor: { role: 'agent', name: 'bench-agent', agentId } });
        }),
      );
    }
    return new PlacementRig(hub, workflowId);
  }

  /** One work order's lifecycle: created (and placed), its offer accepted, completed. */
  async lifecycle(): Promise<void> {
    const input = CreateWorkOrderInput.parse({ workflowId: this.workflowId, taskType: BENCH_TASK, input: { n: this.next++ }, timeouts: LONG_TIMEOUTS });
    const created = await this.hub.dispatch({ type: 'workOrder.create', input, actor: ADMIN });
    const offer = this.offers.get(created.item.id);
    if (!offer) throw new Error(`work order ${created.item.id} was offered to nobody`);
    this.offers.delete(created.item.id);
    const actor: Actor = { role: 'agent', name: 'bench-agent', agentId: offer.agentId };
    const { assignment } = offer;
    const ref = { workflowId: assignment.workflowId, workOrderId: assignment.workOrderId, attemptToken: assignment.attemptToken };
    await this.hub.dispatch({ type: 'offer.answer', input: { ...ref, accept: true }, actor });
    await this.hub.dispatch({ type: 'task.complete', input: { ...ref, result: { ok: true } }, actor });
  }

  close(): Promise<void> {
    return this.hub.close();
  }
}

/** Runs `total` lifecycles in `chains` concurrent chains; process CPU and wall time per lifecycle, µs. */
async function timed(rig: PlacementRig, total: number, chains: number): Promise<{ cpuUs: number; wallUs: number }> {
  let started = 0;
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: chains }, async () => {
      while (started < total) {
        started++;
        await rig.lifecycle();
      }
    }),
  );
  await rig.hub.settle();
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { cpuUs: round((used.user + used.system) / total, 1), wallUs: round((wall * 1000) / total, 1) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * Placement: in-process, the hub core with a small and a large pool of idle agents of one task
 * type. Each order is placed among every free agent, so the cost of a lifecycle shows how
 * placement grows with the pool. Rounds alternate between the pools; the median round counts.
 */
export async function runPlacement(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { pools, lifecycles, rounds, chains } = ctx.scale.placement;
  const rigs: PlacementRig[] = [];
  const trials = pools.map(() => [] as Array<{ cpuUs: number; wallUs: number }>);
  try {
    for (const agents of pools) {
      ctx.log(`placement: registering ${agents} idle agents`);
      rigs.push(await PlacementRig.open(ctx, agents));
    }
    // A first pass warms the JIT and gives some agents a record on the task type.
    for (const rig of rigs) await timed(rig, Math.min(500, lifecycles), chains);
    ctx.log(`placement: ${rounds} rounds of ${Math.round(lifecycles / rounds)} lifecycles per pool, ${chains} at a time`);
    for (let r = 0; r < rounds; r++) {
      for (const [i, rig] of rigs.entries()) trials[i]!.push(await timed(rig, Math.round(lifecycles / rounds), chains));
    }
  } finally {
    for (const rig of rigs) await rig.close();
  }
  const picked = trials.map((list) => ({ cpuUs: median(list.map((x) => x.cpuUs)), wallUs: median(list.map((x) => x.wallUs)) }));
  const small = picked[0]!;
  const large = picked[picked.length - 1]!;
  const [s, l] = [pools[0]!.toLocaleString('en-US'), pools[pools.length - 1]!.toLocaleString('en-US')];
  return {
    name: 'placement',
    title: '11. Placement',
    subject: `${l} agents`,
    against: `${s} agents`,
    checks: [
      check(`placement CPU per order (µs per lifecycle) at ${l} agents of one task type (raw column: at ${s})`, 'µs', large.cpuUs, small.cpuUs, {
        ratioMax: 1.5,
        text: `≤ 1.5 × cost at ${s}`,
      }),
      check(`wall µs per lifecycle at ${l} agents (raw column: at ${s})`, 'µs', large.wallUs, small.wallUs),
    ],
    details: { pools, chains, lifecycles, rounds: trials, picked },
    notes: [
      `In-process: StateWriter.open on an EmbeddedStore in a temp directory (fsync off, the default), ${pools.join(' and ')} registered idle agents of one task type (maxConcurrentTasks 1), one started workflow. Commands through StateWriter.dispatch.`,
      `A lifecycle: workOrder.create (the order is placed at once among the free agents), offer.answer accepting it, task.complete; ${chains} lifecycles in flight. CPU µs is process CPU per lifecycle (placement is the part that depends on the pool), the median of ${rounds} alternating rounds; the raw column holds the same cost with ${s} agents, the ratio is its growth with the pool.`,
    ],
    durationMs: performance.now() - started,
  };
}
