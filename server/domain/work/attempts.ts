import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import { agentIdOf } from './agents.ts';
import { endAttempt } from './attempt-records.ts';
import type { Actor } from '../machinery/actor.ts';
import { requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { registerReferences, type PreparedSpec, type Producer } from '../data/inventory.ts';
import { versionOf, type HubState } from '../machinery/state.ts';
import { finishOrder, queueOrder, requireOrder, setOrderState } from './work-orders.ts';
import type { ActiveAttempt } from './work-index.ts';
import { touch } from '../workflows/workflows.ts';

type AttemptInput = { workflowId: string; workOrderId: string; attemptToken: string };
type CompleteInput = Omit<ParsedRequestOf<'agent', 'task.complete'>, 'outputs'> & { outputs?: PreparedSpec[] | undefined };
type RegisterInput = AttemptInput & PreparedSpec;

/**
 * The order and attempt an agent's message refers to. A token that is not the order's current
 * attempt is STALE_ATTEMPT; that is what keeps a late agent from completing work twice.
 */
export function requireAttempt(t: CommandContext, input: AttemptInput, actor: Actor, phase: 'offered' | 'running'): WorkOrder {
  return checkAttempt(t.state, input, actor, phase);
}

/**
 * requireAttempt as a read, for checks made before a command (e.g. before reading files for it).
 * Without `phase` the attempt may still be offered: the report itself accepts it (requireRunningAttempt).
 */
export function checkAttempt(state: HubState, input: AttemptInput, actor: Actor, phase?: 'offered' | 'running'): WorkOrder {
  const agentId = agentIdOf(actor);
  const order = requireOrder(requireWorkflow(state, input.workflowId), input.workOrderId);
  const attempt = order.attempt;
  if (!attempt || attempt.token !== input.attemptToken) {
    // How this agent's attempts ended: an agent whose first report's answer was lost tells by its attempt's number whether it landed.
    const ended = order.history.filter((run) => run.agentId === agentId).map((run) => ({ number: run.number, outcome: run.outcome }));
    throw new HubError('STALE_ATTEMPT', `attempt ${input.attemptToken} is not the current attempt of work order ${order.id} (it is ${order.state})`, undefined, ended);
  }
  if (attempt.agentId !== agentId) throw new HubError('FORBIDDEN', `work order ${order.id} is assigned to another agent`);
  if (phase !== undefined && order.state !== phase) throw new HubError('INVALID_TRANSITION', `work order ${order.id} is ${order.state}, not ${phase}`);
  return order;
}

/**
 * The agent accepted the offer: the attempt starts and its lease runs. An accept `implied` by a
 * report (the agent started without answering first) dates the start to the offer, the nearest
 * time known to it: dated to the report, a task that reported only its completion took 0 ms.
 */
export function acceptOffer(t: CommandContext, input: AttemptInput, actor: Actor, implied = false): void {
  const order = requireAttempt(t, input, actor, 'offered');
  // Never after now: a wall clock stepped back since the offer.
  const at = implied ? Math.min(order.attempt!.offeredAt, t.ctx.now) : t.ctx.now;
  const path = ['workOrders', order.id];
  setOrderState(t, order, 'running', undefined, { attempts: order.attempts + 1, startedAt: order.startedAt ?? at, progress: 0, message: null });
  t.tx.set(order.workflowId, [...path, 'attempt', 'acceptedAt'], at);
  const active = t.state.work.active.get(input.attemptToken)!;
  active.phase = 'running';
  t.state.work.leases.set(input.attemptToken, t.ctx.monotonicNow + order.timeouts.leaseMs);
  // An implicit accept (see requireRunningAttempt) is followed by the report, which may still be refused.
  t.tx.onUndo(() => {
    active.phase = 'offered';
    t.state.work.leases.delete(input.attemptToken);
  });
  touch(t, order.workflowId);
}

/**
 * The running attempt an agent reports on. A report on an attempt still offered to that agent
 * accepts the offer first: the agent has the offer and is working, but its accept ack may come
 * after its first report (python-socketio acks only once the handler returns).
 */
export function requireRunningAttempt(t: CommandContext, input: AttemptInput, actor: Actor): WorkOrder {
  const order = checkAttempt(t.state, input, actor);
  if (order.state === 'offered') acceptOffer(t, input, actor, true);
  return requireAttempt(t, input, actor, 'running');
}

/** Why an offer is withdrawn, and what that means for its agent. */
export interface WithdrawOfferOptions {
  reason: string;
  /** The order is not offered to that agent again (it declined, or did not answer). Default false. */
  excludeAgent?: boolean;
  /** The agent itself declined, so it needs no cancel. Default false. */
  agentDeclined?: boolean;
}

/**
 * The offer was declined, lapsed or its agent went away: the order goes back to the queue. None
 * of these counts as an attempt, and only a decline or silence held against the agent counts in
 * its `declined` stats. Unless the agent itself declined, it is told to drop the offer, in case it
 * accepted after all (late, or over a connection it has since replaced) and started the work.
 */
export function withdrawOffer(t: CommandContext, order: WorkOrder, { reason, excludeAgent = false, agentDeclined = false }: WithdrawOfferOptions): void {
  const attempt = order.attempt!;
  // A decline not held against the agent (it was draining) is not counted as one either.
  endAttempt(t, order, excludeAgent ? 'declined' : 'withdrawn', { error: reason, notifyAgent: !agentDeclined });
  if (excludeAgent) t.tx.append(order.workflowId, ['workOrders', order.id, 'declinedBy'], attempt.agentId);
  queueOrder(t, order);
}

/** The agent's answer to an offer; `silent`: there was none before the accept deadline. */
export function answerOffer(t: CommandContext, input: AttemptInput & { accept: boolean; reason?: string; silent?: boolean; timedOut?: boolean }, actor: Actor): void {
  if (input.accept) return acceptOffer(t, input, actor);
  // No ack within acceptMs, but the offer is held open past it (a report on it is being read): the sweep ends it if it lapses.
  if (input.timedOut && (t.state.work.active.get(input.attemptToken)?.heldUntil ?? -Infinity) > t.ctx.monotonicNow) return;
  const order = requireAttempt(t, input, actor, 'offered');
  // A draining agent declines whatever reaches it: that says nothing of the order, so it is not held against the agent.
  const draining = t.state.agents?.[order.attempt!.agentId]?.status === 'draining';
  withdrawOffer(t, order, { reason: input.reason ?? 'declined', excludeAgent: !draining, agentDeclined: !input.silent });
}

/** Progress of a running attempt: percentage, message, and details kept as the checkpoint. Renews the lease. */
export function recordProgress(t: CommandContext, input: ParsedRequestOf<'agent', 'task.progress'>, actor: Actor) {
  const order = requireRunningAttempt(t, input, actor);
  const changes: Partial<WorkOrder> = { progress: input.progress, updatedAt: t.ctx.now };
  if (input.message !== undefined) changes.message = input.message;
  if (input.details !== undefined) changes.checkpoint = input.details;
  t.tx.assign(order.workflowId, ['workOrders', order.id], changes);
  t.state.work.leases.set(input.attemptToken, t.ctx.monotonicNow + order.timeouts.leaseMs);
  touch(t, order.workflowId);
  return { version: versionOf(t.state, order.workflowId) };
}

/** Provenance of data registered by the order's current attempt. */
function producerOf(order: WorkOrder): Producer {
  const attempt = order.attempt!;
  return { agentId: attempt.agentId, workOrderId: order.id, attempt: attempt.number };
}

/** An agent registers data its running attempt produced; agent, work order and attempt come from the hub. */
export function registerTaskData(t: CommandContext, input: RegisterInput, actor: Actor) {
  const { workflowId, workOrderId, attemptToken, ...spec } = input;
  const order = requireRunningAttempt(t, { workflowId, workOrderId, attemptToken }, actor);
  const [item] = registerReferences(t, workflowId, [spec], actor, producerOf(order));
  return { version: versionOf(t.state, workflowId), item: item! };
}

/** The attempt finished: its outputs are registered and the order completes, exactly once, in one change. */
export function completeTask(t: CommandContext, input: CompleteInput, actor: Actor) {
  const order = requireRunningAttempt(t, input, actor);
  if (input.outputs?.length) registerReferences(t, order.workflowId, input.outputs, actor, producerOf(order));
  finishOrder(t, order, 'completed', { result: input.result ?? null, notifyAgent: false });
  return { version: versionOf(t.state, order.workflowId), state: order.state };
}

/** Attempts started since a control client last retried the order (all of them if it never did): what maxAttempts and the backoff count. */
function attemptsSinceRetry(order: WorkOrder): number {
  return order.attempts - (order.retried?.attempts ?? 0);
}

/** Exponential backoff before attempt n+1. */
function backoff(t: CommandContext, attempts: number): number {
  return Math.min(t.ctx.settings.backoffMaxMs, t.ctx.settings.backoffBaseMs * 2 ** Math.max(0, attempts - 1));
}

/** What went wrong with a running attempt, and whether another attempt may help. */
export interface AttemptFailure {
  error: string;
  retryable: boolean;
}

/**
 * A running attempt failed (reported, lease lapsed, or agent lost). The order is retried after a
 * backoff, or fails for good (dead-lettered) when it is not retryable or out of attempts.
 */
export function failAttempt(t: CommandContext, order: WorkOrder, outcome: 'failed' | 'lease_expired' | 'agent_lost', { error, retryable }: AttemptFailure): void {
  const reportedByAgent = outcome === 'failed';
  const attempt = order.attempt!;
  t.tx.effect({ type: 'attempt.failed', workflowId: order.workflowId, workOrderId: order.id, taskType: order.taskType, agentId: attempt.agentId, attempt: attempt.number, outcome, error });
  const spent = attemptsSinceRetry(order);
  if (!retryable || spent >= order.maxAttempts) {
    const why = retryable ? `failed after ${spent} attempt(s)${order.retried ? ' since its retry' : ''}: ${error}` : `failed (not retryable): ${error}`;
    endAttempt(t, order, outcome, { error, notifyAgent: !reportedByAgent });
    finishOrder(t, order, 'failed', { error: why });
    return;
  }
  endAttempt(t, order, outcome, { error, notifyAgent: !reportedByAgent });
  t.tx.set(order.workflowId, ['workOrders', order.id, 'error'], error);
  const at = t.ctx.now + backoff(t, spent);
  queueOrder(t, order, at);
  t.tx.effect({ type: 'order.retrying', workflowId: order.workflowId, workOrderId: order.id, attempt: order.attempts + 1, at });
}

/** The agent reports that its attempt failed. */
export function failTask(t: CommandContext, input: ParsedRequestOf<'agent', 'task.fail'>, actor: Actor) {
  const order = requireRunningAttempt(t, input, actor);
  failAttempt(t, order, 'failed', { error: input.error, retryable: input.retryable });
  return { version: versionOf(t.state, order.workflowId), state: order.state };
}

/**
 * Marks an attempt held open `until` (what the reading just renewed: its offer's deadline or its
 * lease) while the hub reads the files of a report on it: neither an ack's timeout nor the order's
 * overall timeout ends it meanwhile, since the report came in time.
 */
function holdOpen(t: CommandContext, active: ActiveAttempt, until: number): void {
  const before = active.heldUntil;
  active.heldUntil = until;
  t.tx.onUndo(() => {
    if (before === undefined) delete active.heldUntil;
    else active.heldUntil = before;
  });
}

/**
 * Renews the leases of the agent's attempts (accepting those still offered); reports the tokens it
 * no longer holds. `holding`: the hub is reading the files of a report on them, which must stay
 * open until the report is applied or refused, so an offered one is held (its accept deadline
 * pushed back, in memory) rather than accepted: a refused report changes nothing.
 */
export function heartbeat(t: CommandContext, input: ParsedRequestOf<'agent', 'agent.heartbeat'> & { holding?: boolean }, actor: Actor) {
  const agentId = agentIdOf(actor);
  const work = t.state.work;
  const renewed: string[] = [];
  const lost: string[] = [];
  for (const token of input.attemptTokens) {
    const active = work.active.get(token);
    if (!active || active.agentId !== agentId) {
      lost.push(token);
      continue;
    }
    const order = requireWorkflow(t.state, active.workflowId).workOrders[active.workOrderId]!;
    if (active.phase === 'offered' && input.holding) {
      const before = active.offerDeadline;
      active.offerDeadline = Math.max(before, t.ctx.monotonicNow + order.timeouts.acceptMs);
      t.tx.onUndo(() => (active.offerDeadline = before));
      holdOpen(t, active, active.offerDeadline);
    } else if (active.phase === 'offered') {
      // An agent heartbeats the attempts it works on: for one still offered, that is its accept.
      acceptOffer(t, { workflowId: active.workflowId, workOrderId: active.workOrderId, attemptToken: token }, actor, true);
    } else {
      const lease = t.ctx.monotonicNow + order.timeouts.leaseMs;
      work.leases.set(token, lease);
      if (input.holding) holdOpen(t, active, lease);
    }
    renewed.push(token);
  }
  return { renewed, lost };
}

