import { AGENTS_DOC } from '../machinery/state.ts';
import { endConnectionDrain, setDrainingOnReturn } from './agents.ts';
import { failAttempt, withdrawOffer } from './attempts.ts';
import type { CommandContext } from '../machinery/context.ts';
import { FINAL_STATES, finishOrder } from './work-orders.ts';
import { reviewAgent } from './unservable.ts';
import { offerAgain } from './retry.ts';
import { orderKey } from './work-index.ts';
import type { OfflineAgent } from './offline-agents.ts';
import type { TimerQueue, Timed } from './timer-queue.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';

/**
 * How many timers one sweep runs. It is one command, so one turn of the event loop: 50,000
 * overall timeouts due at once held it 1.2 s. The rest stay due, and the hub sweeps again at once.
 */
export const TIMERS_PER_SWEEP = 1_000;
/** How many of the orders whose declines a sweep forgot its log line names. */
const HEALED_NAMED = 5;

/**
 * The hub's periodic check, with the clock it is given: offers past their accept deadline go to
 * someone else, running attempts whose lease lapsed are retried, agents gone longer than the grace
 * period are marked offline and lose their work, agents offline longer than forgetAgentsAfterMs
 * leave the pool, retries whose backoff is over are queued, orders every capable agent declined
 * are offered to them again once declinedRetryMs has passed, and orders past their overall timeout
 * fail. Cost is proportional to the work in flight and due. Every timer but forgetting runs on the
 * monotonic clock, so a step of the wall clock neither ends them all at once nor holds them for its
 * length; backoffs and overall timeouts, kept in documents across restarts as wall-clock times, are
 * put on it for what is left of them by the wall clock when set, and at start-up. It runs at most
 * TIMERS_PER_SWEEP timers, and takes at most that many entries of each timer queue (an ended order's
 * left with it; one whose order moved on since, a retry's backoff cut short, runs nothing); `more`
 * then says that others may be due still.
 */
export function sweep(t: CommandContext): { expiredOffers: number; lapsedLeases: number; offline: number; forgotten: number; timedOut: number; declinesForgotten: number; more: boolean } {
  const work = t.state.work;
  const now = t.ctx.now;
  const monotonicNow = t.ctx.monotonicNow;
  const result = { expiredOffers: 0, lapsedLeases: 0, offline: 0, forgotten: 0, timedOut: 0, declinesForgotten: 0 };
  const orderOf = (workflowId: string, workOrderId: string) => t.state.workflows.get(workflowId)?.workOrders[workOrderId];
  const count = (what: keyof typeof result | undefined) => {
    if (what) result[what]++;
  };
  // A timer whose change failed lately waits its turn (FaultBackoff).
  const putOff = (key: string) => !work.sweepFaults.mayRun(key, monotonicNow);
  const failed = { count: 0 };
  let left = TIMERS_PER_SWEEP;
  const runTimer = <T>(key: string, change: () => T) => {
    left--;
    return runAlone(t, key, change, failed);
  };

  for (const [agentId, since] of work.disconnected) {
    if (left <= 0) break;
    const agent = t.state.agents?.[agentId];
    if (!agent || agent.status === 'offline' || since + t.ctx.settings.graceMs > monotonicNow || putOff(`offline:${agentId}`)) continue;
    count(runTimer(`offline:${agentId}`, () => markOffline(t, agent, since)));
  }

  const forgetAfter = t.ctx.settings.forgetAgentsAfterMs;
  const waiting: OfflineAgent[] = [];
  const nextToForget = () => (left > 0 ? work.offline.nextDue(now - forgetAfter) : undefined);
  for (let due = nextToForget(); due; due = nextToForget()) {
    const agentId = due.agentId;
    const agent = t.state.agents && Object.hasOwn(t.state.agents, agentId) ? t.state.agents[agentId] : undefined;
    // Back since: nothing to forget. Back and offline again since: its wait starts from then.
    if (agent?.status !== 'offline' || typeof agent.offlineSince !== 'number') continue;
    if (agent.offlineSince + forgetAfter > now) {
      work.offline.watch(agent.id, agent.offlineSince);
      continue;
    }
    if (putOff(`forget:${agentId}`)) {
      waiting.push(due);
      continue;
    }
    count(runTimer(`forget:${agentId}`, () => {
      t.tx.remove(AGENTS_DOC, [agent.id]);
      t.tx.onUndo(work.agentIds.remove(agent.id));
      work.forgetAgent(agent);
      t.tx.effect({ type: 'agent.forgotten', agentId: agent.id, offlineSince: agent.offlineSince! });
      return 'forgotten' as const;
    }));
  }
  for (const due of waiting) work.offline.watch(due.agentId, due.at);

  for (const [token, active] of [...work.active]) {
    if (left <= 0) break;
    const order = orderOf(active.workflowId, active.workOrderId);
    if (!order || order.attempt?.token !== token) continue;
    // An offer still waiting for its batch to be stored has not reached its agent: no answer is due yet.
    if (active.phase === 'offered' && active.offerDeadline <= monotonicNow && !work.unsent.has(token) && !putOff(`offer:${token}`)) {
      // Silence from a draining agent says nothing of the order, as its decline does not (answerOffer).
      const draining = t.state.agents?.[active.agentId]?.status === 'draining';
      count(runTimer(`offer:${token}`, () => {
        withdrawOffer(t, order, { reason: 'no answer before the accept deadline', excludeAgent: !active.carried && !draining });
        return 'expiredOffers' as const;
      }));
    } else if (active.phase === 'running' && (work.leases.get(token) ?? Infinity) <= monotonicNow && !putOff(`lease:${token}`)) {
      count(runTimer(`lease:${token}`, () => {
        lapseLease(t, order);
        return 'lapsedLeases' as const;
      }));
    }
  }

  // Entries of timers that no longer stand (their order moved on since) are taken too, but run nothing:
  // a queue that gave all it may holds more due entries behind them, so the next sweep follows at once.
  let queueFull = false;
  const backoffs = dueEntries(work.delayed, monotonicNow, left);
  let putBack = 0;
  for (const due of backoffs.taken) {
    const order = orderOf(due.workflowId, due.workOrderId);
    // Not a timer of an earlier backoff (the order ran and backed off again since).
    if (order?.state !== 'queued' || order.notBefore !== due.notBefore) continue;
    const key = `backoff:${orderKey(order.workflowId, order.id)}`;
    if (putOff(key)) {
      work.delayed.push(due, t.tx);
      putBack++;
      continue;
    }
    runTimer(key, () => {
      t.tx.set(order.workflowId, ['workOrders', order.id, 'notBefore'], null);
      // Already in the queue when its backoff ended while the hub was down (WorkIndex.enqueue).
      if (!work.queued.has(orderKey(order.workflowId, order.id))) work.enqueue(order, now, monotonicNow, { undo: t.tx });
    });
  }

  // Only entries put off (all of them due again at once) would make a sweep that follows at once do nothing.
  queueFull ||= backoffs.full && putBack < backoffs.taken.length;
  const expiries = dueEntries(work.declineExpiries, monotonicNow, left);
  const healed: string[] = [];
  putBack = 0;
  for (const due of expiries.taken) {
    const order = orderOf(due.workflowId, due.workOrderId);
    // Not a timer of an earlier marker (the order was offered, or marked otherwise, since).
    if (order?.state !== 'queued' || order.waiting?.reason !== 'all_declined' || order.waiting.retryAt !== due.retryAt) continue;
    const key = `declines:${orderKey(order.workflowId, order.id)}`;
    if (putOff(key)) {
      work.declineExpiries.push(due, t.tx);
      putBack++;
      continue;
    }
    if (runTimer(key, () => offerAgain(t, order))) {
      result.declinesForgotten++;
      if (healed.length < HEALED_NAMED) healed.push(`${order.workflowId}/${order.id}`);
    }
  }
  // One line for the operator per sweep, not per order: orders marked together heal together.
  if (result.declinesForgotten > 0) t.tx.effect({ type: 'declines.forgotten', orders: result.declinesForgotten, named: healed, afterMs: t.ctx.settings.declinedRetryMs! });
  queueFull ||= expiries.full && putBack < expiries.taken.length;
  const deadlines = dueEntries(work.deadlines, monotonicNow, left);
  putBack = 0;
  for (const due of deadlines.taken) {
    const order = orderOf(due.workflowId, due.workOrderId);
    // Not a timer of another order of that id (its workflow was deleted, and the id taken again).
    if (!order || FINAL_STATES.has(order.state) || order.firstQueuedAt !== due.firstQueuedAt || order.timeouts.overallMs === null) continue;
    // A report on its attempt, in before this check, is being read (its files hashed): the timeout waits for it.
    const heldUntil = order.attempt ? work.active.get(order.attempt.token)?.heldUntil : undefined;
    if (heldUntil !== undefined && heldUntil > monotonicNow) {
      work.deadlines.push({ ...due, at: heldUntil }, t.tx);
      continue;
    }
    const key = `timeout:${orderKey(order.workflowId, order.id)}`;
    if (putOff(key)) {
      work.deadlines.push(due, t.tx);
      putBack++;
      continue;
    }
    count(runTimer(key, () => {
      finishOrder(t, order, 'failed', { error: `overall timeout of ${order.timeouts.overallMs} ms exceeded` });
      return 'timedOut' as const;
    }));
  }
  // The changes undone left runtime facts without an undo behind: derived anew from the documents, once.
  if (failed.count > 0) {
    work.rebuild(t.state.workflows.values(), t.state.agents, now, monotonicNow);
    t.state.inventory.rebuild(t.state.workflows.values());
  }
  queueFull ||= deadlines.full && putBack < deadlines.taken.length;
  return { ...result, more: left <= 0 || queueFull };
}

/** An agent gone longer than its grace period goes offline: its offers are withdrawn and its attempts fail. */
function markOffline(t: CommandContext, agent: Agent, since: number): 'offline' {
  const work = t.state.work;
  const agentId = agent.id;
  // The wall-clock time it left, for the log (`since` is on the monotonic clock).
  const disconnectedAt = agent.disconnectedSince ?? t.ctx.now;
  // A drain for its connection ended with it (here when the disconnect's record was lost to a failed write).
  endConnectionDrain(t, agent);
  // Draining belongs to its id: it registers again as draining.
  if (agent.status === 'draining') setDrainingOnReturn(t, agent, true);
  // The time is in the document, so that a restart does not start the wait to forget it over.
  t.tx.assign(AGENTS_DOC, [agentId], { status: 'offline', offlineSince: t.ctx.now, disconnectedSince: null });
  work.offline.watch(agentId, t.ctx.now);
  // Offline now: no longer watched every sweep (ephemeral agent ids would pile up otherwise).
  work.disconnected.delete(agentId);
  t.tx.onUndo(() => work.disconnected.set(agentId, since));
  // No longer one that takes work: orders only it could do are marked.
  reviewAgent(t, agentId);
  t.tx.effect({ type: 'agent.offline', agentId, disconnectedAt });
  for (const token of [...(work.byAgent.get(agentId) ?? [])]) {
    const active = work.active.get(token)!;
    const order = t.state.workflows.get(active.workflowId)!.workOrders[active.workOrderId]!;
    if (active.phase === 'offered') withdrawOffer(t, order, { reason: 'agent went offline' });
    // A lease that lapsed within the grace ended its attempt first, though a late sweep (a paused hub) sees both at once.
    else if ((work.leases.get(token) ?? Infinity) <= since + t.ctx.settings.graceMs) lapseLease(t, order);
    else failAttempt(t, order, 'agent_lost', { error: `agent ${agentId} went offline`, retryable: true });
  }
  return 'offline';
}

/** A running attempt's lease lapsed without a heartbeat: it ends, and the order is retried. */
function lapseLease(t: CommandContext, order: WorkOrder): void {
  failAttempt(t, order, 'lease_expired', { error: `lease of ${order.timeouts.leaseMs} ms expired without a heartbeat`, retryable: true });
}

/** Takes at most `most` entries of a timer queue due at `monotonicNow`, earliest first; `full`: it took `most`, and more may be due. */
function dueEntries<T extends Timed>(queue: TimerQueue<T>, monotonicNow: number, most: number): { taken: T[]; full: boolean } {
  const taken: T[] = [];
  while (taken.length < most && queue.size > 0 && queue.peek()!.at <= monotonicNow) taken.push(queue.pop()!);
  return { taken, full: most > 0 && taken.length === most };
}

/**
 * Runs one timer's change alone (a savepoint): one that throws something unexpected is undone by
 * itself (the sweep then derives the index anew from the documents, once), the operator is told,
 * and the timer is put off with a growing wait (FaultBackoff), while the others run. Returns the
 * change's value, or undefined when it failed.
 */
function runAlone<T>(t: CommandContext, key: string, change: () => T, failed: { count: number }): T | undefined {
  const work = t.state.work;
  const outcome = t.tx.isolate(change);
  if (outcome.ok) {
    work.sweepFaults.cleared(key);
    return outcome.value;
  }
  failed.count++;
  const { count, retryInMs } = work.sweepFaults.failed(key, t.ctx.monotonicNow);
  const error = outcome.error;
  t.tx.effect({ type: 'timer.failed', timer: key, error: error instanceof Error ? error : new Error(String(error)), failures: count, retryInMs });
  return undefined;
}
