import { describe, expect, it } from 'vitest';
import { RegisterAgentInput, type Agent } from '../../shared/schemas/agent.ts';
import { CreateWorkOrderInput, CreateWorkOrdersInput, type WorkOrder } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { applyCommand } from '../../server/domain/machinery/commands.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import type { HubState } from '../../server/domain/machinery/state.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { chooseAgent, eligible } from '../../server/domain/work/assignment.ts';
import { filedAs } from '../../server/domain/work/free-agents.ts';
import { choosePlacement } from '../../server/domain/work/placement.ts';
import { ADMIN, SETTINGS, domain } from '../helpers/domain.ts';
import { asAgent, seeded } from '../helpers/random-work.ts';

type Domain = ReturnType<typeof domain>;
type Shape = Pick<WorkOrder, 'workflowId' | 'taskType' | 'requirements' | 'preferences' | 'declinedBy'>;

/** The documented policy, straight: chooseAgent over every agent of the pool that is eligible for the order now. */
function reference(state: HubState, order: Shape): string | undefined {
  const holders = state.work.workflowAgents.get(order.workflowId);
  const candidates: Agent[] = [];
  for (const agent of Object.values(state.agents ?? {})) {
    const situation = {
      connected: state.work.connected.has(agent.id),
      activeInWorkflow: holders?.has(agent.id) ?? false,
      workflowAgents: holders?.size ?? 0,
      maxConcurrentAgents: state.workflows.get(order.workflowId)!.config.maxConcurrentAgents,
    };
    if (eligible(agent, order, situation)) candidates.push(agent);
  }
  return chooseAgent(candidates, order)?.id;
}

/** The index's choice for an order, in a transaction that is kept or rolled back at random. */
function indexed(d: Domain, order: Shape, keep: boolean): string | undefined {
  const tx = new Transaction<Effect>(d.state);
  const chosen = choosePlacement({ state: d.state, tx, ctx: { now: 0, monotonicNow: 0, newId: (prefix) => `${prefix}_probe`, settings: SETTINGS } }, order as WorkOrder);
  if (!keep) tx.rollback();
  return chosen?.id;
}

/** Every filed agent is filed by what its document says now; every agent that may take work is filed under each type it declares. */
function expectIndexTrue(state: HubState): void {
  const wrong: string[] = [];
  const available = state.work.available;
  for (const type of available.taskTypes()) {
    for (const [agentId, entry] of available.of(type)!.filed) {
      const agent = state.agents?.[agentId];
      if (!agent) wrong.push(`${agentId} filed under ${type} is not in the pool`);
      else if (JSON.stringify(entry) !== JSON.stringify(filedAs(agent, type))) wrong.push(`${agentId} under ${type}: ${JSON.stringify(entry)}`);
    }
  }
  for (const agent of Object.values(state.agents ?? {})) {
    const free = state.work.connected.has(agent.id) && agent.status !== 'draining' && agent.status !== 'offline' && agent.load < agent.maxConcurrentTasks;
    if (!free) continue;
    for (const type of agent.taskTypes) if (!available.of(type)?.filed.has(agent.id)) wrong.push(`${agent.id}, free, is not filed under ${type}`);
  }
  expect(wrong).toEqual([]);
}

const TYPES = ['a', 'b'];
const CAPABILITIES = ['x', 'y', 'z'];

/**
 * A random pool at work: agents of one type, of both, or of any (`*`), with capabilities and
 * 1–3 slots, register, re-register with other slots or types, drain, disconnect; orders with
 * requirements, preferences, priorities, in workflows capped at maxConcurrentAgents or not, are
 * created (several in one command, so that agents are assigned at the same time), accepted,
 * declined, completed after 0–3 ms (so that means tie), failed, cancelled.
 */
function simulate(seed: number, steps: number, check: (d: Domain, random: () => number, workflows: string[]) => void, pool = 12): void {
  const random = seeded(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const some = <T>(items: readonly T[], p: number) => items.filter(() => random() < p);
  const d = domain();
  const workflows = [null, null, 1, 2, 4].map((maxConcurrentAgents) => {
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q', config: { maxConcurrentAgents } })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    return workflowId;
  });
  const agentIds = Array.from({ length: pool + Math.floor(random() * 30) }, (_, i) => `ag${(i * 7919) % 100_000}`);
  const register = (agentId: string) =>
    d.register(agentId, {
      taskTypes: pick([['a'], ['a'], ['b'], ['a', 'b'], ['*'], ['a', '*']]),
      capabilities: some(CAPABILITIES, 0.5),
      maxConcurrentTasks: 1 + Math.floor(random() * 3),
    });
  for (const agentId of agentIds) register(agentId);
  let next = 0;
  const spec = () => ({
    id: `o${next++}`,
    taskType: pick(TYPES),
    requirements: random() < 0.2 ? some(CAPABILITIES, 0.4) : [],
    preferences: random() < 0.2 ? Object.fromEntries(some(CAPABILITIES, 0.6).map((c) => [c, Math.floor(random() * 4)])) : {},
    priority: pick(['low', 'normal', 'high'] as const),
  });
  for (let step = 0; step < steps; step++) {
    check(d, random, workflows);
    if (random() < 0.3) d.advance(Math.floor(random() * 3));
    const roll = random();
    const orders = workflows.flatMap((workflowId) => Object.values(d.state.workflows.get(workflowId)!.workOrders));
    const offered = orders.filter((o) => o.state === 'offered');
    const running = orders.filter((o) => o.state === 'running');
    const ref = (o: WorkOrder) => ({ workflowId: o.workflowId, workOrderId: o.id, attemptToken: o.attempt!.token });
    if (roll < 0.25) {
      const workflowId = pick(workflows);
      const order = spec();
      // The order goes to the agent the policy picks from the pool as it is before the command.
      const expected = reference(d.state, { workflowId, declinedBy: [], ...order });
      const { tx } = d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, ...order }));
      const offer = tx.effects.find((e) => e.type === 'offer');
      expect(offer?.type === 'offer' ? offer.agentId : undefined, `order ${order.id}`).toBe(expected);
    } else if (roll < 0.32) {
      d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: pick(workflows), orders: Array.from({ length: 2 + Math.floor(random() * 5) }, spec) }));
    } else if (roll < 0.5 && offered.length > 0) {
      const o = pick(offered);
      d.run('offer.answer', { ...ref(o), accept: random() < 0.85 }, asAgent(o.attempt!.agentId));
    } else if (roll < 0.75 && running.length > 0) {
      const o = pick(running);
      d.run('task.complete', ref(o), asAgent(o.attempt!.agentId));
    } else if (roll < 0.82 && running.length > 0) {
      const o = pick(running);
      d.run('task.fail', { ...ref(o), error: 'boom', retryable: random() < 0.5 }, asAgent(o.attempt!.agentId));
    } else if (roll < 0.86) {
      register(pick(agentIds));
    } else if (roll < 0.9) {
      const agentId = pick(agentIds);
      d.run('agent.status', { status: d.state.agents![agentId]!.status === 'draining' ? 'active' : 'draining' }, asAgent(agentId));
    } else if (roll < 0.93) {
      d.run('agent.disconnect', { agentId: pick(agentIds) });
    } else if (roll < 0.96) {
      const pending = orders.filter((o) => o.state === 'queued' || o.state === 'offered');
      const o = pending.length > 0 ? pick(pending) : undefined;
      if (o) d.run('workOrder.cancel', { workflowId: o.workflowId, workOrderId: o.id });
    } else {
      d.advance(Math.floor(random() * 50));
      d.run('hub.sweep', {});
    }
  }
  check(d, random, workflows);
}

describe('placement (differential, against chooseAgent over every eligible agent)', () => {
  it('offers each new order to the agent the documented policy picks from the whole pool, over random pools and work', () => {
    for (let seed = 1; seed <= 40; seed++) simulate(seed, 300, () => undefined);
  });

  it('chooses the same in big pools with records of every kind: alike, varied, the reliable ones the slowest, and some with a mean of 0 ms', () => {
    for (const kind of ['alike', 'varied', 'reliable-slow', 'instant'] as const) {
      const random = seeded(11);
      const d = domain();
      const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
      d.run('workflow.start', { workflowId });
      for (let i = 0; i < 600; i++) d.register(`p${i}`, { taskTypes: i % 50 === 0 ? ['*'] : ['a'], capabilities: random() < 0.5 ? ['x'] : [], maxConcurrentTasks: 4 });
      // Records set in the documents as a fixture, then filed anew from them (as a rebuild does).
      for (const agent of Object.values(d.state.agents!)) {
        const completed = kind === 'alike' ? 10 : 1 + Math.floor(random() * 100);
        const failed = kind === 'varied' ? Math.floor(random() * 10) : 0;
        const avgMs =
          kind === 'alike' ? 100 : kind === 'varied' ? 50 + Math.floor(random() * 1000) : kind === 'instant' ? (random() < 0.2 ? 0 : Math.floor(random() * 5)) : 20 * completed + Math.floor(random() * 3);
        if (random() < 0.9) agent.stats.byTaskType.a = { completed, failed, avgMs, p95Ms: avgMs, recentMs: [] };
        agent.load = Math.floor(random() * 3);
        agent.lastAssignedAt = random() < 0.3 ? null : Math.floor(random() * 5);
      }
      d.state.work.available.rekeyAll(d.state.agents);
      const agentIds = Object.keys(d.state.agents!);
      for (let k = 0; k < 60; k++) {
        const order: Shape = {
          workflowId,
          taskType: 'a',
          requirements: random() < 0.3 ? ['x'] : [],
          preferences: random() < 0.1 ? { x: 1 } : {},
          declinedBy: agentIds.filter(() => random() < 0.1),
        };
        expect(indexed(d, order, false), `${kind}: ${JSON.stringify(order)}`).toBe(reference(d.state, order));
      }
    }
  });

  it('picks what the policy picks for any order, at any moment of random work, and keeps every agent filed by its document', () => {
    let compared = 0;
    let chosen = 0;
    for (let seed = 100; seed <= 130; seed++) {
      simulate(seed, 200, (d, random, workflows) => {
        expectIndexTrue(d.state);
        const agentIds = Object.keys(d.state.agents ?? {});
        for (let k = 0; k < 6; k++) {
          const order: Shape = {
            workflowId: workflows[Math.floor(random() * workflows.length)]!,
            taskType: random() < 0.9 ? TYPES[Math.floor(random() * TYPES.length)]! : '*',
            requirements: random() < 0.2 ? CAPABILITIES.filter(() => random() < 0.4) : [],
            preferences: random() < 0.15 ? { [CAPABILITIES[Math.floor(random() * 3)]!]: 1 + Math.floor(random() * 3) } : {},
            declinedBy: agentIds.filter(() => random() < 0.2),
          };
          const expected = reference(d.state, order);
          expect(indexed(d, order, random() < 0.5), JSON.stringify(order)).toBe(expected);
          compared++;
          if (expected !== undefined) chosen++;
        }
        expectIndexTrue(d.state);
      });
    }
    // Most probes have an agent to choose: the comparison is not of empty choices.
    expect(chosen / compared).toBeGreaterThan(0.5);
  });

  it('undoes its index changes with the command: after a rollback every agent is filed as before', () => {
    let undone = 0;
    simulate(7, 400, (d, random, workflows) => {
      if (random() > 0.3) return;
      expectIndexTrue(d.state);
      const before = snapshot(d.state);
      const orders = workflows.flatMap((workflowId) => Object.values(d.state.workflows.get(workflowId)!.workOrders));
      const running = orders.find((o) => o.state === 'running');
      const offered = orders.find((o) => o.state === 'offered');
      const ref = (o: WorkOrder) => ({ workflowId: o.workflowId, workOrderId: o.id, attemptToken: o.attempt!.token });
      const tx = new Transaction<Effect>(d.state);
      const t = { state: d.state, tx, ctx: { now: 5_000_000, monotonicNow: 5_000_000, newId: (prefix: string) => `${prefix}_undo${undone}`, settings: SETTINGS } };
      // Commands that change loads, stats and lastAssignedAt, file agents, and drop stale ones; then a rollback.
      const roll = random();
      if (roll < 0.3 && running) applyCommand(t, { type: 'task.complete', input: ref(running), actor: asAgent(running.attempt!.agentId) });
      else if (roll < 0.45 && running) applyCommand(t, { type: 'task.fail', input: { ...ref(running), error: 'x', retryable: true }, actor: asAgent(running.attempt!.agentId) });
      else if (roll < 0.6 && offered) applyCommand(t, { type: 'offer.answer', input: { ...ref(offered), accept: false }, actor: asAgent(offered.attempt!.agentId) });
      else if (roll < 0.7) {
        const agentId = Object.keys(d.state.agents!)[0]!;
        const input = { ...RegisterAgentInput.parse({ agentId, agentType: 'w', taskTypes: ['b', '*'], maxConcurrentTasks: 3 }), newConnection: false };
        applyCommand(t, { type: 'agent.register', input, actor: asAgent(agentId) });
      } else {
        const input = CreateWorkOrdersInput.parse({ workflowId: workflows[0]!, orders: [{ id: `undo${undone}a`, taskType: 'a' }, { id: `undo${undone}b`, taskType: 'b' }] });
        applyCommand(t, { type: 'workOrder.createMany', input, actor: ADMIN });
      }
      tx.rollback();
      undone++;
      expect(snapshot(d.state)).toEqual(before);
      // The rest of the scheduler's index (attempts in flight) is rebuilt after a rollback, as the writer does.
      d.state.work.rebuild(d.state.workflows.values(), d.state.agents, 5_000_000);
      expect(snapshot(d.state)).toEqual(before);
      // Its next pass gives the free agents what is queued, as the next command would.
      d.run('hub.sweep', {});
    });
    expect(undone).toBeGreaterThan(50);
  });
});

/** What the index holds, comparably. */
function snapshot(state: HubState) {
  const out: Record<string, unknown> = {};
  for (const type of [...state.work.available.taskTypes()].sort()) {
    const agents = state.work.available.of(type)!;
    out[type] = { filed: [...agents.filed.entries()].sort(), untried: agents.untried.keysArray(), tried: agents.tried.keysArray(), bySpeed: agents.bySpeed.keysArray() };
  }
  return out;
}
