import { AGENTS_DOC } from '../machinery/state.ts';
import { setDrainingOnReturn } from './agents.ts';
import { failAttempt, withdrawOffer } from './attempts.ts';
import type { CommandContext } from '../machinery/context.ts';
import { FINAL_STATES, finishOrder } from './work-orders.ts';
import { reviewAgent } from './unservable.ts';
import { orderKey } from './work-index.ts';

/**
 * The hub's periodic check, with the clock it is given: offers past their accept deadline go to
 * someone else, running attempts whose lease lapsed are retried, agents gone longer than the grace
 * period are marked offline and lose their work, agents offline longer than forgetAgentsAfterMs
 * leave the pool, retries whose backoff is over are queued, and orders past their overall timeout
 * fail. Cost is proportional to the work in flight and due. Every timer but forgetting runs on the
 * monotonic clock, so a step of the wall clock neither ends them all at once nor holds them for its
 * length; backoffs and overall timeouts, kept in documents across restarts as wall-clock times, are
 * put on it for what is left of them by the wall clock when set, and at start-up.
 */
export function sweep(t: CommandContext): { expiredOffers: number; lapsedLeases: number; offline: number; forgotten: number; timedOut: number } {
  const work = t.state.work;
  const now = t.ctx.now;
  const monotonicNow = t.ctx.monotonicNow;
  const result = { expiredOffers: 0, lapsedLeases: 0, offline: 0, forgotten: 0, timedOut: 0 };
  const orderOf = (workflowId: string, workOrderId: string) => t.state.workflows.get(workflowId)?.workOrders[workOrderId];

  for (const [agentId, since] of work.disconnected) {
    const agent = t.state.agents?.[agentId];
    if (!agent || agent.status === 'offline' || since + t.ctx.settings.graceMs > monotonicNow) continue;
    // The wall-clock time it left, for the log (`since` is on the monotonic clock).
    const disconnectedAt = agent.disconnectedSince ?? now;
    // Draining belongs to its id: it registers again as draining.
    if (agent.status === 'draining') setDrainingOnReturn(t, agent, true);
    // The time is in the document, so that a restart does not start the wait to forget it over.
    t.tx.assign(AGENTS_DOC, [agentId], { status: 'offline', offlineSince: now, disconnectedSince: null });
    work.offline.watch(agentId, now);
    // Offline now: no longer watched every sweep (ephemeral agent ids would pile up otherwise).
    work.disconnected.delete(agentId);
    t.tx.onUndo(() => work.disconnected.set(agentId, since));
    // No longer one that takes work: orders only it could do are marked.
    reviewAgent(t, agentId);
    result.offline++;
    t.tx.effect({ type: 'agent.offline', agentId, disconnectedAt });
    for (const token of [...(work.byAgent.get(agentId) ?? [])]) {
      const active = work.active.get(token)!;
      const order = orderOf(active.workflowId, active.workOrderId)!;
      if (active.phase === 'offered') withdrawOffer(t, order, { reason: 'agent went offline' });
      else failAttempt(t, order, 'agent_lost', { error: `agent ${agentId} went offline`, retryable: true });
    }
  }

  const forgetAfter = t.ctx.settings.forgetAgentsAfterMs;
  for (let due = work.offline.nextDue(now - forgetAfter); due; due = work.offline.nextDue(now - forgetAfter)) {
    const agent = t.state.agents && Object.hasOwn(t.state.agents, due.agentId) ? t.state.agents[due.agentId] : undefined;
    // Back since: nothing to forget. Back and offline again since: its wait starts from then.
    if (agent?.status !== 'offline' || typeof agent.offlineSince !== 'number') continue;
    if (agent.offlineSince + forgetAfter > now) {
      work.offline.watch(agent.id, agent.offlineSince);
      continue;
    }
    t.tx.remove(AGENTS_DOC, [agent.id]);
    t.tx.onUndo(work.agentIds.remove(agent.id));
    work.forgetAgent(agent);
    result.forgotten++;
    t.tx.effect({ type: 'agent.forgotten', agentId: agent.id, offlineSince: agent.offlineSince });
  }

  for (const [token, active] of [...work.active]) {
    const order = orderOf(active.workflowId, active.workOrderId);
    if (!order || order.attempt?.token !== token) continue;
    if (active.phase === 'offered' && active.offerDeadline <= monotonicNow) {
      // Silence from a draining agent says nothing of the order, as its decline does not (answerOffer).
      const draining = t.state.agents?.[active.agentId]?.status === 'draining';
      withdrawOffer(t, order, { reason: 'no answer before the accept deadline', excludeAgent: !active.carried && !draining });
      result.expiredOffers++;
    } else if (active.phase === 'running' && (work.leases.get(token) ?? Infinity) <= monotonicNow) {
      failAttempt(t, order, 'lease_expired', { error: `lease of ${order.timeouts.leaseMs} ms expired without a heartbeat`, retryable: true });
      result.lapsedLeases++;
    }
  }

  while (work.delayed.size > 0 && work.delayed.peek()!.at <= monotonicNow) {
    const due = work.delayed.pop()!;
    const order = orderOf(due.workflowId, due.workOrderId);
    // Not a timer of an earlier backoff (the order ran and backed off again since).
    if (order?.state === 'queued' && order.notBefore === due.notBefore) {
      t.tx.set(order.workflowId, ['workOrders', order.id, 'notBefore'], null);
      // Already in the queue when its backoff ended while the hub was down (WorkIndex.enqueue).
      if (!work.queued.has(orderKey(order.workflowId, order.id))) work.enqueue(order, now, monotonicNow);
    }
  }

  while (work.deadlines.size > 0 && work.deadlines.peek()!.at <= monotonicNow) {
    const due = work.deadlines.pop()!;
    const order = orderOf(due.workflowId, due.workOrderId);
    // Not a timer of another order of that id (its workflow was deleted, and the id taken again).
    if (!order || FINAL_STATES.has(order.state) || order.firstQueuedAt !== due.firstQueuedAt || order.timeouts.overallMs === null) continue;
    finishOrder(t, order, 'failed', { error: `overall timeout of ${order.timeouts.overallMs} ms exceeded` });
    result.timedOut++;
  }
  return result;
}
