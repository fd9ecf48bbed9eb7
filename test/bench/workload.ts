import type { StateWriter } from '../../server/state-writer.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import type { TokenGrant } from '../../shared/schemas/tokens.ts';

/** The tokens of every bench hub (and of the raw baseline server, which ignores them). */
export const BENCH_TOKENS = { admin: 'bench-admin-token', agent: 'bench-agent-token', monitor: 'bench-monitor-token' } as const;

export const BENCH_GRANTS: TokenGrant[] = [
  { token: BENCH_TOKENS.admin, role: 'admin', name: 'bench-admin' },
  { token: BENCH_TOKENS.agent, role: 'agent', name: 'bench-agent' },
  { token: BENCH_TOKENS.monitor, role: 'monitor', name: 'bench-monitor' },
];

/** Work orders of the bench: nobody lets a lease or an offer lapse during a run. */
export const LONG_TIMEOUTS = { acceptMs: 600_000, leaseMs: 86_400_000, overallMs: null } as const;

/** The task type every load agent handles. */
export const BENCH_TASK = 'bench.work';

const ADMIN = { role: 'admin', name: 'bench-admin' } as const;

/**
 * Creates a started workflow with `orders` work orders of `taskType`, `batch` per createMany,
 * straight through StateWriter.dispatch (the path every socket request ends in, minus the socket).
 */
export async function preloadWorkOrders(hub: Pick<StateWriter, 'dispatch'>, options: { orders: number; batch: number; taskType: string }): Promise<string> {
  const created = await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ userQuery: `bench: ${options.orders} work orders` }), actor: ADMIN });
  const workflowId = created.workflow.id;
  await hub.dispatch({ type: 'workflow.start', input: { workflowId }, actor: ADMIN });
  await addOrders(hub, workflowId, options.orders, { batch: options.batch, taskType: options.taskType, label: 'bench' });
  return workflowId;
}

/** Adds `count` work orders to a workflow, `batch` per createMany, described as `<label> order <n>`. */
export async function addOrders(hub: Pick<StateWriter, 'dispatch'>, workflowId: string, count: number, options: { batch: number; taskType: string; label: string }): Promise<void> {
  for (let done = 0; done < count; done += options.batch) {
    const orders = Array.from({ length: Math.min(options.batch, count - done) }, (_, i) => ({
      taskType: options.taskType,
      description: `${options.label} order ${done + i}`,
      input: { n: done + i },
      timeouts: LONG_TIMEOUTS,
    }));
    await hub.dispatch({ type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId, orders }), actor: ADMIN });
  }
}

/** A progress update as an agent sends it; `message` carries the request's sequence number by default. */
export function progressPayload(ref: { workflowId: string; workOrderId: string; attemptToken: string }, sequence: number, message = String(sequence)) {
  // A literal, not spreads: copying the reference by spreading took ~6 % of the generator's CPU at 10k/s.
  return { workflowId: ref.workflowId, workOrderId: ref.workOrderId, attemptToken: ref.attemptToken, progress: sequence % 100, message };
}

/**
 * Workflows with `ordersPerWorkflow` work orders each (createMany, 1,000 per command), quickly:
 * `finished` of them cancelled at once, which cancels their orders too (a history of ended
 * workflows), and `open` left pending, in memory. Straight through StateWriter.dispatch, as
 * preloadWorkOrders. Returns the ids of each kind.
 */
export async function produceWorkflows(
  hub: Pick<StateWriter, 'dispatch'>,
  options: { finished: number; open: number; ordersPerWorkflow: number; taskType: string },
): Promise<{ finishedIds: string[]; openIds: string[] }> {
  const fill = async (label: string) => {
    const created = await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ userQuery: `bench history: ${label}` }), actor: ADMIN });
    const workflowId = created.workflow.id;
    await addOrders(hub, workflowId, options.ordersPerWorkflow, { batch: 1000, taskType: options.taskType, label: 'history' });
    return workflowId;
  };
  const finishedIds: string[] = [];
  for (let w = 0; w < options.finished; w++) {
    const workflowId = await fill(`finished ${w}`);
    await hub.dispatch({ type: 'workflow.cancel', input: { workflowId, reason: 'bench history' }, actor: ADMIN });
    finishedIds.push(workflowId);
  }
  const openIds: string[] = [];
  for (let w = 0; w < options.open; w++) openIds.push(await fill(`open ${w}`));
  return { finishedIds, openIds };
}
