import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import type { Workflow, WorkflowStatus } from '../../../shared/schemas/workflow.ts';
import { WorkOrderState } from '../../../shared/schemas/work-order.ts';
import { AGENTS_DOC, versionOf } from '../machinery/state.ts';
import { requireFreeId, requireOpen, requireWorkflow, type CommandContext } from '../machinery/context.ts';

type Input<E extends 'workflow.create'> = ParsedRequestOf<'control', E>;

/** Which statuses each lifecycle change may start from, and where it leads. */
export const LIFECYCLE = {
  start: { from: ['pending'], to: 'in_progress' },
  complete: { from: ['in_progress'], to: 'completed' },
  fail: { from: ['pending', 'in_progress'], to: 'failed' },
  cancel: { from: ['pending', 'in_progress'], to: 'cancelled' },
} as const satisfies Record<string, { from: readonly WorkflowStatus[]; to: WorkflowStatus }>;

export type LifecycleChange = keyof typeof LIFECYCLE;

/** Marks a workflow as changed now. Every workflow transition calls it once. */
export function touch(t: CommandContext, workflowId: string): void {
  t.tx.set(workflowId, ['updatedAt'], t.ctx.now);
}

type Collection = 'steps' | 'objectives' | 'kpis';

/**
 * Adds a new entity to one of an open workflow's collections: the caller's id or a fresh one
 * (a taken id is CONFLICT), one write, the workflow touched. Returns it with the version.
 */
export function addToWorkflow<K extends Collection>(
  t: CommandContext,
  workflowId: string,
  collection: K,
  requested: { id?: string | undefined; kind: string; prefix: string },
  build: (id: string, now: number) => Workflow[K][string],
): { version: number; item: Workflow[K][string] } {
  const workflow = requireWorkflow(t.state, workflowId);
  requireOpen(workflow, `add ${/^[aeiou]/.test(requested.kind) ? 'an' : 'a'} ${requested.kind}`);
  const id = requested.id ?? t.ctx.newId(requested.prefix);
  requireFreeId(workflow[collection], id, requested.kind);
  t.tx.set(workflowId, [collection, id], build(id, t.ctx.now));
  touch(t, workflowId);
  return { version: versionOf(t.state, workflowId), item: workflow[collection][id]! as Workflow[K][string] };
}

/** Creates a workflow in status pending. */
export function createWorkflow(t: CommandContext, input: Input<'workflow.create'>): ReplyOf<'control', 'workflow.create'> {
  const id = input.id ?? t.ctx.newId('wf');
  if (id === AGENTS_DOC) throw new HubError('VALIDATION', `${id} is reserved`);
  if (t.state.workflows.has(id) || t.state.archived.has(id)) throw new HubError('CONFLICT', `workflow ${id} already exists`);
  const now = t.ctx.now;
  const workflow: Workflow = {
    id,
    userQuery: input.userQuery,
    outputFolder: input.outputFolder ?? `${t.ctx.settings.outputRoot}/${id}`,
    config: input.config,
    status: 'pending',
    failureReason: null,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    endedAt: null,
    progress: 0,
    orderProgress: null,
    stages: {},
    steps: {},
    objectives: {},
    kpis: {},
    workOrders: {},
    workOrderCounts: Object.fromEntries(WorkOrderState.options.map((state) => [state, 0])) as Workflow['workOrderCounts'],
    unservable: 0,
    paused: null,
    agents: {},
    data: {},
    lineage: {},
  };
  t.tx.putDoc(id, workflow);
  // Its order list starts empty and grows with it: never built from 100,000 orders at a first read.
  t.state.work.orderLists.of(requireWorkflow(t.state, id));
  t.tx.onUndo(() => t.state.work.orderLists.forget(id));
  return { version: versionOf(t.state, id), workflow: requireWorkflow(t.state, id) };
}

/**
 * Moves a workflow through its lifecycle. An illegal change (complete a pending workflow,
 * start a completed one) is refused with INVALID_TRANSITION and changes nothing.
 */
export function changeStatus(
  t: CommandContext,
  workflowId: string,
  change: LifecycleChange,
  reason?: string,
): { version: number; status: WorkflowStatus } {
  const workflow = requireWorkflow(t.state, workflowId);
  const rule = LIFECYCLE[change];
  if (!(rule.from as readonly WorkflowStatus[]).includes(workflow.status)) {
    throw new HubError('INVALID_TRANSITION', `cannot ${change} workflow ${workflowId}: it is ${workflow.status}`);
  }
  const now = t.ctx.now;
  t.tx.set(workflowId, ['status'], rule.to);
  if (change === 'start') t.tx.set(workflowId, ['startedAt'], now);
  else t.tx.set(workflowId, ['endedAt'], now);
  if (change === 'complete') t.tx.set(workflowId, ['progress'], 100);
  if (reason !== undefined) t.tx.set(workflowId, ['failureReason'], reason);
  touch(t, workflowId);
  return { version: versionOf(t.state, workflowId), status: rule.to };
}
