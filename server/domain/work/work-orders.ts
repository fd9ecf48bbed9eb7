import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { WorkOrder, WorkOrderState } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { requireEntity, requireOpen, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { endAttempt } from './attempt-records.ts';
import { recordRun } from '../data/lineage.ts';
import { versionOf } from '../machinery/state.ts';
import { touch } from '../workflows/workflows.ts';
import { followOrders } from '../workflows/progress.ts';
import { moveUnservable } from './unservable.ts';

type Spec = ParsedRequestOf<'control', 'workOrder.createMany'>['orders'][number];

export const FINAL_STATES: ReadonlySet<WorkOrderState> = new Set(['completed', 'failed', 'cancelled']);

/** The work order, or NOT_FOUND. */
export function requireOrder(workflow: Workflow, workOrderId: string): WorkOrder {
  return requireEntity(workflow.workOrders, workOrderId, 'work order', workflow.id);
}

/**
 * The workflow-level writes of a bulk change (orders created, a workflow's orders released or
 * cancelled), made once at its end instead of once per order: 100,000 orders wrote their
 * workflow's counts, unservable count and updatedAt 400,000 times, each a journal op to compact away again.
 */
export class OrderTally {
  private readonly counts = new Map<WorkOrderState, number>();
  private unservable = 0;
  private moves = 0;

  constructor(private readonly workflow: Workflow) {}

  /** Notes an order created in state `to`. */
  created(to: WorkOrderState): void {
    this.counts.set(to, (this.counts.get(to) ?? 0) + 1);
    this.moves++;
  }

  /** Notes an order's move from `from` to `to` and how its workflow's unservable count moves. */
  moved(from: WorkOrderState, to: WorkOrderState, unservable: number): void {
    this.counts.set(from, (this.counts.get(from) ?? 0) - 1);
    this.created(to);
    this.unservable += unservable;
  }

  /** Writes what was noted: each count moved, the unservable count, the workflow touched, its progress followed. */
  write(t: CommandContext): void {
    if (this.moves === 0) return;
    const counts = this.workflow.workOrderCounts;
    for (const [state, delta] of this.counts) if (delta !== 0) t.tx.set(this.workflow.id, ['workOrderCounts', state], counts[state] + delta);
    moveUnservable(t, this.workflow, this.unservable);
    // Not again when the command touched it already (a workflow started or cancelled): a write of the same value would be an op more.
    if (this.workflow.updatedAt !== t.ctx.now) touch(t, this.workflow.id);
    followOrders(t, this.workflow);
  }
}

/**
 * Moves an order to `next`, keeping the workflow's per-state counts, its catalog, its count of
 * unservable orders and (while it follows its orders) its progress in step; with `tally`, the
 * workflow's counts and progress are left to it. `fields` of the order that change with its state
 * are written in the same write as it (one path resolved, one pointer built, per order).
 */
export function setOrderState(t: CommandContext, order: WorkOrder, next: WorkOrderState, tally?: OrderTally, fields?: Partial<WorkOrder>): void {
  const from = order.state;
  if (from === next) {
    if (fields) t.tx.assign(order.workflowId, ['workOrders', order.id], fields);
    return;
  }
  const workflow = requireWorkflow(t.state, order.workflowId);
  const counts = workflow.workOrderCounts;
  const uncatalog = t.state.work.catalogs.moved(order, order.state, next);
  if (uncatalog) t.tx.onUndo(uncatalog);
  // An order leaving the queue loses its `waiting` marker, in the same write.
  const unmarked = order.waiting ? -1 : 0;
  if (tally) tally.moved(order.state, next, unmarked);
  else {
    moveUnservable(t, workflow, unmarked);
    t.tx.set(workflow.id, ['workOrderCounts', order.state], counts[order.state] - 1);
    t.tx.set(workflow.id, ['workOrderCounts', next], counts[next] + 1);
  }
  const changes: Partial<WorkOrder> = unmarked ? { waiting: null, state: next, updatedAt: t.ctx.now } : { state: next, updatedAt: t.ctx.now };
  // Object.assign, not a literal of two spreads: V8 builds that one key by key, slowly, into a slow object.
  t.tx.assign(workflow.id, ['workOrders', order.id], fields ? Object.assign(changes, fields) : changes);
  // Leaving a final state too (a retried order): the share of finished orders moves either way.
  if (!tally && (FINAL_STATES.has(next) || FINAL_STATES.has(from))) followOrders(t, workflow);
}

/** Puts an order in the queue now, or after `notBefore` when it is backing off. */
export function queueOrder(t: CommandContext, order: WorkOrder, notBefore: number | null = null, tally?: OrderTally): void {
  const now = t.ctx.now;
  const first = order.firstQueuedAt === null;
  setOrderState(t, order, 'queued', tally, { queuedAt: order.queuedAt ?? now, notBefore, firstQueuedAt: order.firstQueuedAt ?? now });
  const key = t.state.work.enqueue(order, now, t.ctx.monotonicNow, { undo: t.tx });
  if (first) t.state.work.watchDeadline(order, now, t.ctx.monotonicNow, { undo: t.tx, key });
}

/** What an order's dependencies say: wait, go, or fail because of the named dependency. */
export function dependencyVerdict(workflow: Workflow, order: WorkOrder): { verdict: 'wait' } | { verdict: 'go' } | { verdict: 'fail'; because: WorkOrder } {
  let waiting = false;
  for (const id of order.dependencies) {
    const dependency = workflow.workOrders[id]!;
    if (dependency.state === 'completed') continue;
    if (dependency.state === 'failed' || dependency.state === 'cancelled') {
      if (!order.continueOnDependencyFailure) return { verdict: 'fail', because: dependency };
      continue;
    }
    waiting = true;
  }
  return waiting ? { verdict: 'wait' } : { verdict: 'go' };
}

/**
 * Decides where a pending, blocked or retried order goes now that its workflow runs, a dependency
 * ended or a control client retried it; with `tally`, the workflow's counts are left to it.
 */
export function release(t: CommandContext, workflow: Workflow, order: WorkOrder, tally?: OrderTally): void {
  const decision = dependencyVerdict(workflow, order);
  if (decision.verdict === 'fail') return finishOrder(t, order, 'failed', { error: `dependency ${decision.because.id} ${decision.because.state}` }, tally);
  if (decision.verdict === 'wait') return setOrderState(t, order, 'blocked', tally);
  // Inputs an upstream order was to produce must exist by now; running without them would be wrong.
  const absent = order.inputs.length === 0 ? undefined : order.inputs.find((id) => !Object.hasOwn(workflow.data, id));
  if (absent !== undefined) finishOrder(t, order, 'failed', { error: `input data reference ${absent} does not exist` }, tally);
  else queueOrder(t, order, null, tally);
}

/** `ids` without repeats (itself when it has fewer than two: no set made per order for them). */
function distinct(ids: string[]): string[] {
  return ids.length < 2 ? ids : [...new Set(ids)];
}

/** Refuses a dependency graph with a cycle among the new orders (old ones cannot point to new ones). */
function assertAcyclic(specs: Array<{ id: string; dependencies: string[] }>): void {
  const batch = new Map(specs.map((s) => [s.id, s.dependencies]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]) => {
    if (state.get(id) === 'done' || !batch.has(id)) return;
    if (state.get(id) === 'visiting') throw new HubError('CONFLICT', `dependency cycle: ${[...path, id].join(' → ')}`);
    state.set(id, 'visiting');
    for (const dependency of batch.get(id)!) visit(dependency, [...path, id]);
    state.set(id, 'done');
  };
  for (const spec of specs) visit(spec.id, []);
}

/**
 * Creates work orders, all or none. Dependencies must name existing orders or orders of the same
 * batch and form no cycle. Ready orders are queued (and offered when the command ends).
 */
export function createOrders(t: CommandContext, workflowId: string, specs: Spec[]): WorkOrder[] {
  const workflow = requireWorkflow(t.state, workflowId);
  requireOpen(workflow, 'create work orders');
  const withIds = specs.map((spec) => ({ ...spec, id: spec.id ?? t.ctx.newId('wo') }));
  const ids = new Set<string>();
  for (const spec of withIds) {
    if (Object.hasOwn(workflow.workOrders, spec.id) || ids.has(spec.id)) throw new HubError('CONFLICT', `work order ${spec.id} already exists`);
    ids.add(spec.id);
  }
  for (const spec of withIds) {
    // Without dependencies nothing upstream can produce an input later, so it must exist now.
    if (spec.dependencies.length === 0) {
      for (const input of spec.inputs) {
        if (!Object.hasOwn(workflow.data, input)) throw new HubError('NOT_FOUND', `input data reference ${input} of ${spec.id} does not exist in workflow ${workflowId}`);
      }
    }
    for (const dependency of spec.dependencies) {
      if (dependency === spec.id) throw new HubError('CONFLICT', `work order ${spec.id} cannot depend on itself`);
      if (!ids.has(dependency) && !Object.hasOwn(workflow.workOrders, dependency)) {
        throw new HubError('NOT_FOUND', `dependency ${dependency} of ${spec.id} does not exist in workflow ${workflowId}`);
      }
    }
  }
  assertAcyclic(withIds);
  const now = t.ctx.now;
  const tally = new OrderTally(workflow);
  for (const spec of withIds) {
    const order: WorkOrder = {
      id: spec.id,
      workflowId,
      taskType: spec.taskType,
      description: spec.description,
      requirements: spec.requirements,
      preferences: spec.preferences,
      priority: spec.priority,
      input: spec.input ?? null,
      dependencies: distinct(spec.dependencies),
      inputs: distinct(spec.inputs),
      outputs: [],
      dependents: [],
      continueOnDependencyFailure: spec.continueOnDependencyFailure,
      maxAttempts: spec.maxAttempts,
      timeouts: spec.timeouts,
      state: 'pending',
      createdAt: now,
      updatedAt: now,
      queuedAt: null,
      firstQueuedAt: null,
      notBefore: null,
      waiting: null,
      startedAt: null,
      endedAt: null,
      attempts: 0,
      attempt: null,
      history: [],
      declinedBy: [],
      progress: 0,
      message: null,
      checkpoint: null,
      result: null,
      error: null,
    };
    t.tx.set(workflowId, ['workOrders', order.id], order);
    const unlist = t.state.work.orderLists.added(workflowId, order.id);
    if (unlist) t.tx.onUndo(unlist);
    const uncatalog = t.state.work.catalogs.added(workflow.workOrders[order.id]!);
    if (uncatalog) t.tx.onUndo(uncatalog);
    tally.created('pending');
  }
  // Linked once all exist: a batch may depend on orders that come later in it.
  for (const spec of withIds) {
    if (spec.dependencies.length === 0) continue;
    for (const dependency of new Set(spec.dependencies)) t.tx.append(workflowId, ['workOrders', dependency, 'dependents'], spec.id);
  }
  if (workflow.status === 'in_progress') for (const spec of withIds) release(t, workflow, workflow.workOrders[spec.id]!, tally);
  tally.write(t);
  return withIds.map((spec) => workflow.workOrders[spec.id]!);
}

/**
 * Ends an order for good: completed, failed (dead-lettered) or cancelled. Its attempt, if any, is
 * released (a cancel is pushed to the agent unless it is the one reporting), and dependents move.
 */
export function finishOrder(
  t: CommandContext,
  order: WorkOrder,
  state: 'completed' | 'failed' | 'cancelled',
  fields: { error?: string; result?: unknown; notifyAgent?: boolean } = {},
  tally?: OrderTally,
): void {
  if (FINAL_STATES.has(order.state)) return;
  const workflow = requireWorkflow(t.state, order.workflowId);
  // An offer not yet accepted (the order ran out of time meanwhile) is taken back: its agent never started, so no failure is held against it.
  const outcome = order.attempt?.acceptedAt === null ? 'withdrawn' : state;
  if (order.attempt) endAttempt(t, order, outcome, { error: fields.error ?? null, notifyAgent: fields.notifyAgent ?? true });
  t.state.work.ended(order.workflowId, order.id, t.tx);
  const changes: Partial<WorkOrder> = { endedAt: t.ctx.now, notBefore: null };
  if (fields.error !== undefined) changes.error = fields.error;
  if (fields.result !== undefined) changes.result = fields.result;
  if (state === 'completed') changes.progress = 100;
  setOrderState(t, order, state, tally, changes);
  if (state !== 'cancelled') recordRun(t, order, state, fields.error);
  if (state === 'failed') {
    t.tx.effect({ type: 'order.deadLettered', workflowId: workflow.id, workOrderId: order.id, taskType: order.taskType, attempts: order.attempts, error: fields.error ?? 'failed' });
  }
  if (!tally) touch(t, workflow.id);
  if (workflow.status === 'in_progress') releaseDependents(t, workflow, order);
}

/**
 * The dependents still to look at while a finish releases them. A dependent that fails in turn
 * pushes its own on top, so they go in the order a recursion would take, without a stack as deep
 * as the chain: a chain of thousands of orders overflowed it, and the failing command made every
 * later sweep fail.
 */
let releasing: Array<{ workflow: Workflow; id: string }> | undefined;

function releaseDependents(t: CommandContext, workflow: Workflow, order: WorkOrder): void {
  const outer = releasing === undefined;
  const stack = (releasing ??= []);
  for (let i = order.dependents.length - 1; i >= 0; i--) stack.push({ workflow, id: order.dependents[i]! });
  if (!outer) return;
  try {
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const dependent = next.workflow.workOrders[next.id]!;
      if (dependent.state === 'blocked') release(t, next.workflow, dependent);
    }
  } finally {
    releasing = undefined;
  }
}

/** Queues (or blocks) the pending orders of a workflow that has just started. */
export function releaseWorkflowOrders(t: CommandContext, workflow: Workflow): void {
  const tally = new OrderTally(workflow);
  for (const order of Object.values(workflow.workOrders)) if (order.state === 'pending') release(t, workflow, order, tally);
  tally.write(t);
}

/** Cancels every unfinished order of a workflow that has ended. */
export function cancelWorkflowOrders(t: CommandContext, workflow: Workflow, reason: string): void {
  const tally = new OrderTally(workflow);
  for (const order of Object.values(workflow.workOrders)) {
    if (!FINAL_STATES.has(order.state)) finishOrder(t, order, 'cancelled', { error: reason }, tally);
  }
  tally.write(t);
}

/** Cancels one work order (control). Cancelling a finished order is refused. */
export function cancelOrder(t: CommandContext, input: ParsedRequestOf<'control', 'workOrder.cancel'>) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  const order = requireOrder(workflow, input.workOrderId);
  if (FINAL_STATES.has(order.state)) throw new HubError('INVALID_TRANSITION', `work order ${order.id} is already ${order.state}`);
  finishOrder(t, order, 'cancelled', { error: input.reason ?? 'cancelled by a control client' });
  return { version: versionOf(t.state, workflow.id), item: order };
}
