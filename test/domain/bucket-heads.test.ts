import { describe, expect, it } from 'vitest';
import { CreateWorkOrdersInput, type Assignment } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import type { HubState } from '../../server/domain/machinery/state.ts';
import { canServe } from '../../server/domain/work/assignment.ts';
import { domain } from '../helpers/domain.ts';
import { asAgent, seeded } from '../helpers/random-work.ts';

type Domain = ReturnType<typeof domain>;

function startedWorkflow(d: Domain, id: string): string {
  d.run('workflow.create', CreateWorkflowInput.parse({ id, userQuery: 'q' }));
  d.run('workflow.start', { workflowId: id });
  return id;
}

/** The offers a command made to an agent. */
function offersTo(tx: ReturnType<Domain['run']>['tx'], agentId: string): Assignment[] {
  return tx.effects.flatMap((effect) => (effect.type === 'offer' && effect.agentId === agentId ? [effect.assignment] : []));
}

/** The documented choice, straight: the first in queue order of every queued order of the hub the agent can do and did not decline (its slot about to be freed). */
function bestQueued(state: HubState, agentId: string): string | undefined {
  const agent = state.agents![agentId]!;
  let best: { key: number; seq: number; id: string } | undefined;
  for (const entry of state.work.queued.values()) {
    const order = state.workflows.get(entry.workflowId)!.workOrders[entry.workOrderId]!;
    if (order.state !== 'queued' || order.declinedBy.includes(agentId) || !canServe(agent, order)) continue;
    if (!best || entry.key > best.key || (entry.key === best.key && entry.seq < best.seq)) best = { key: entry.key, seq: entry.seq, id: `${entry.workflowId}/${entry.workOrderId}` };
  }
  return best?.id;
}

describe('a freed agent’s choice among the buckets', () => {
  it('looks at the buckets of its task type best first, not at every workflow with queued work', () => {
    const d = domain();
    d.register('busy', { taskTypes: ['t'], maxConcurrentTasks: 1 });
    const target = startedWorkflow(d, 'target');
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: target, orders: [{ id: 'first', taskType: 't', priority: 'critical' }] }));
    const first = d.state.workflows.get(target)!.workOrders['first']!.attempt!;
    d.run('offer.answer', { workflowId: target, workOrderId: 'first', attemptToken: first.token, accept: true }, asAgent('busy'));
    // A backlog: 1,000 workflows with queued work of the agent's type, 1,000 with work of another.
    for (let i = 0; i < 2_000; i++) {
      const workflowId = startedWorkflow(d, `w${i}`);
      d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'o', taskType: i % 2 === 0 ? 't' : 'other', priority: 'low' }] }));
    }
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: target, orders: [{ id: 'next', taskType: 't', priority: 'critical' }] }));
    let peeks = 0;
    for (const bucket of d.state.work.buckets.values()) {
      const peek = bucket.queue.peek.bind(bucket.queue);
      bucket.queue.peek = () => (peeks++, peek());
    }
    const { tx } = d.run('task.complete', { workflowId: target, workOrderId: 'first', attemptToken: first.token }, asAgent('busy'));
    expect(offersTo(tx, 'busy').map((offer) => offer.workOrderId)).toEqual(['next']);
    expect(peeks).toBeLessThan(20);
  });

  it('offers a freed agent the first in queue order of all it may take (random work in many workflows)', () => {
    const random = seeded(11);
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    const d = domain();
    const agents = ['a1', 'a2', 'a3', 'a4', 'a5'];
    const kinds = [['a'], ['b'], ['a', 'b'], ['*'], ['c']];
    agents.forEach((agentId, i) => d.register(agentId, { taskTypes: kinds[i]!, capabilities: random() < 0.5 ? ['x'] : [], maxConcurrentTasks: 1 }));
    const workflows = Array.from({ length: 12 }, (_, i) => startedWorkflow(d, `wf${i}`));
    let next = 0;
    let checked = 0;
    for (let step = 0; step < 3_000; step++) {
      if (random() < 0.5) d.advance(Math.floor(random() * 50));
      const choice = random();
      if (choice < 0.3) {
        const orders = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
          id: `o${next++}`,
          taskType: pick(['a', 'b', 'c']),
          requirements: random() < 0.2 ? ['x'] : [],
          priority: pick(['low', 'normal', 'high', 'critical'] as const),
        }));
        d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: pick(workflows), orders }));
        continue;
      }
      const held = [...d.state.work.active.values()];
      if (held.length === 0) continue;
      const active = pick(held);
      const ref = { workflowId: active.workflowId, workOrderId: active.workOrderId, attemptToken: active.token };
      if (active.phase === 'offered') {
        d.run('offer.answer', { ...ref, accept: random() < 0.8 }, asAgent(active.agentId));
        continue;
      }
      const expected = bestQueued(d.state, active.agentId);
      const { tx } = random() < 0.7 ? d.run('task.complete', ref, asAgent(active.agentId)) : d.run('task.fail', { ...ref, error: 'boom', retryable: false }, asAgent(active.agentId));
      const offered = offersTo(tx, active.agentId).map((offer) => `${offer.workflowId}/${offer.workOrderId}`);
      expect(offered).toEqual(expected === undefined ? [] : [expected]);
      if (expected !== undefined) checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });
});
