import { DataReferenceSpec } from '../../shared/schemas/data.ts';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import type { Transaction } from '../../server/domain/machinery/transaction.ts';
import type { domain } from './domain.ts';

// Random work for domain tests: orders created, offered, run, completed, failed, cancelled, and data registered.

type Domain = ReturnType<typeof domain>;

export const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });
export const TASK_TYPES = ['embed', 'parse', 'rank'];

/** Creates orders in one command (so they share a createdAt), as `ids` of task type `taskType`. */
export function create(d: Domain, workflowId: string, taskType: string, ids: string[]): void {
  d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: ids.map((id) => ({ id, taskType })) }));
}

/** A seeded generator of numbers in [0, 1), so a failure replays. */
export function seeded(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** Random work: orders created (some in batches sharing a time), offered, run, completed, failed and cancelled. */
export function randomWork(d: Domain, workflowId: string, steps: number, random = seeded(7)): void {
  const step = randomWorker(d, workflowId, random);
  for (let i = 0; i < steps; i++) step();
}

/** Registers agents of every task type and returns one step of random work at a time (see randomWork). */
export function randomWorker(d: Domain, workflowId: string, random: () => number): () => void {
  const agents = ['a1', 'a2', 'a3'];
  for (const agentId of agents) d.register(agentId, { taskTypes: ['*'], maxConcurrentTasks: 3 });
  let next = 0;
  return () => {
    const workflow = d.state.workflows.get(workflowId)!;
    const pick = random();
    if (random() < 0.5) d.advance(1 + Math.floor(random() * 3));
    if (pick < 0.35) {
      const count = 1 + Math.floor(random() * 4);
      // Ids that sort against creation order too: ties in createdAt are broken by id.
      create(d, workflowId, TASK_TYPES[Math.floor(random() * TASK_TYPES.length)]!, Array.from({ length: count }, () => `o${(next++ * 7919) % 1000}-${next}`));
      return;
    }
    const orders = Object.values(workflow.workOrders);
    const order = orders[Math.floor(random() * orders.length)];
    if (!order) return;
    const attempt = order.attempt;
    const ref = attempt && { workflowId, workOrderId: order.id, attemptToken: attempt.token };
    if (pick < 0.55 && ref && order.state === 'offered') d.run('offer.answer', { ...ref, accept: true }, asAgent(attempt.agentId));
    else if (pick < 0.75 && ref && order.state === 'running') d.run('task.complete', ref, asAgent(attempt.agentId));
    else if (pick < 0.85 && ref && order.state === 'running') d.run('task.fail', { ...ref, error: 'boom', retryable: random() < 0.5 }, asAgent(attempt.agentId));
    else if (pick < 0.95 && !['completed', 'failed', 'cancelled'].includes(order.state)) d.run('workOrder.cancel', { workflowId, workOrderId: order.id });
  };
}

/**
 * Commands whose undo leaves the scheduler's index as the document says, so that a test can undo
 * them at any time without the rebuild the writer does after a rollback: orders created behind
 * `hold` (which no agent can take, so they wait blocked), cancels of orders that hold no attempt,
 * and data registrations. Returns the command's transaction, to undo it with.
 */
export function undoableWorker(d: Domain, workflowId: string, random: () => number): () => Transaction<Effect> {
  let next = 0;
  return () => {
    const workflow = d.state.workflows.get(workflowId)!;
    const pick = random();
    if (random() < 0.5) d.advance(1);
    const waiting = Object.values(workflow.workOrders).filter((o) => o.state === 'pending' || o.state === 'blocked' || o.state === 'queued');
    if (pick < 0.4 || waiting.length === 0) {
      const orders = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({ id: `u${next++}`, taskType: TASK_TYPES[Math.floor(random() * TASK_TYPES.length)]!, dependencies: ['hold'] }));
      return d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders })).tx;
    }
    if (pick < 0.8) return d.run('workOrder.cancel', { workflowId, workOrderId: waiting[Math.floor(random() * waiting.length)]!.id }).tx;
    return d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: `d${next++}`, path: 's3://b/d' }), observed: null }] }).tx;
  };
}
