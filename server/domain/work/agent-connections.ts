import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { CommandContext } from '../machinery/context.ts';
import { AGENTS_DOC, type HubState } from '../machinery/state.ts';
import { endConnectionDrain, requireAgent, setDrainingOnReturn } from './agents.ts';
import { withdrawOffer } from './attempts.ts';
import { reviewAgent } from './unservable.ts';

// Agents coming and going. Apart from agents.ts (the pool's bookkeeping) because a connection
// change withdraws offers, and attempts need that bookkeeping: together they would import each other.

/** The attempts the hub believes an agent holds. */
export function heldAttempts(state: HubState, agentId: string): ReplyOf<'agent', 'agent.register'>['attempts'] {
  const held = [];
  for (const token of state.work.byAgent.get(agentId) ?? []) {
    const attempt = state.work.active.get(token)!;
    held.push({ workflowId: attempt.workflowId, workOrderId: attempt.workOrderId, attemptToken: token, state: attempt.phase });
  }
  return held;
}

/**
 * Registers an agent, or re-registers it after a reconnect: the identity, stats and running work
 * are kept, and the fields it sends now replace the old ones. Offers pushed over a previous
 * connection can no longer be answered, so they go back to the queue. An agent the pool has
 * forgotten starts afresh.
 */
export function registerAgent(
  t: CommandContext,
  input: ParsedRequestOf<'agent', 'agent.register'> & { newConnection: boolean },
): ReplyOf<'agent', 'agent.register'> {
  if (!t.state.agents) t.tx.putDoc(AGENTS_DOC, {});
  const { agentId, newConnection, ...fields } = input;
  const existing = t.state.agents![agentId];
  if (existing && newConnection) {
    withdrawOffers(t, agentId, 'the agent reconnected before answering');
    // A drain for the connection before this one ended with it (a process that finished its work, or one back from a blip).
    endConnectionDrain(t, existing);
  }
  if (existing) {
    const returning = existing.status === 'offline' ? (existing.drainingOnReturn ? 'draining' : existing.load > 0 ? 'busy' : 'idle') : undefined;
    const status = returning ?? existing.status;
    if (returning) setDrainingOnReturn(t, existing, false);
    const declared = existing.taskTypes;
    t.tx.assign(AGENTS_DOC, [agentId], { ...fields, status, offlineSince: null, disconnectedSince: null });
    unfileDropped(t, agentId, declared);
    // Its maxConcurrentTasks may have changed, and with it the capacity it is sorted by.
    t.state.work.available.rekey(requireAgent(t.state, agentId), t.tx);
  } else {
    const agent: Agent = {
      id: agentId,
      ...fields,
      status: 'idle',
      note: null,
      load: 0,
      registeredAt: t.ctx.now,
      lastAssignedAt: null,
      offlineSince: null,
      disconnectedSince: null,
      stats: { assigned: 0, completed: 0, failed: 0, declined: 0, byTaskType: {} },
    };
    t.tx.set(AGENTS_DOC, [agentId], agent);
    t.tx.onUndo(t.state.work.agentIds.add(agentId));
  }
  markConnected(t, agentId);
  reviewAgent(t, agentId);
  t.tx.effect({ type: 'agent.registered', agentId, agentType: fields.agentType, taskTypes: fields.taskTypes, how: !existing ? 'new' : newConnection ? 'reconnected' : 'updated' });
  return { agent: requireAgent(t.state, agentId), attempts: heldAttempts(t.state, agentId) };
}

/** Takes an agent out of the sets of the task types it no longer declares (undone with the command). */
function unfileDropped(t: CommandContext, agentId: string, declared: readonly string[]): void {
  const work = t.state.work;
  const current = t.state.agents![agentId]!.taskTypes;
  for (const type of declared) {
    if (!current.includes(type)) work.available.unfile(type, agentId, t.tx);
  }
}

/** Records that an agent's socket is up (runtime only; undone with the command). */
function markConnected(t: CommandContext, agentId: string): void {
  const work = t.state.work;
  const since = work.disconnected.get(agentId);
  const wasConnected = work.connected.has(agentId);
  work.connected.add(agentId);
  work.disconnected.delete(agentId);
  work.freed.add(agentId);
  t.tx.onUndo(() => {
    if (!wasConnected) work.connected.delete(agentId);
    if (since !== undefined) work.disconnected.set(agentId, since);
  });
}

/**
 * Records that an agent's socket is gone. Offers waiting for its answer go back to the queue at
 * once; running work waits out the grace period (or its lease) for the agent to come back. Asked
 * again while its record is not stored (the write failed), it writes the record.
 */
export function markDisconnected(t: CommandContext, agentId: string): void {
  const work = t.state.work;
  // Not undone: the socket is gone whether or not this record is stored, and a rollback must not
  // make it a placement target again. The transport asks again once writes work.
  if (work.connected.delete(agentId)) work.disconnected.set(agentId, t.ctx.monotonicNow);
  const since = work.disconnected.get(agentId);
  const agent = t.state.agents?.[agentId];
  // Recorded already (or offline, or unknown): nothing to write.
  if (since === undefined || !agent || agent.disconnectedSince !== null) return;
  // In the document too, so that monitors tell an agent in its grace period from a connected one.
  // `since` is on the monotonic clock; the document keeps the wall-clock time it stands for.
  t.tx.set(AGENTS_DOC, [agentId, 'disconnectedSince'], Math.round(t.ctx.now - (t.ctx.monotonicNow - since)));
  withdrawOffers(t, agentId, 'agent disconnected');
  endConnectionDrain(t, agent);
}

/** Puts the orders offered to an agent back in the queue without holding it against the agent; `carriedOnly`: only offers carried in report replies. */
function withdrawOffers(t: CommandContext, agentId: string, reason: string, carriedOnly = false): void {
  const work = t.state.work;
  for (const token of [...(work.byAgent.get(agentId) ?? [])]) {
    const active = work.active.get(token)!;
    if (active.phase !== 'offered' || (carriedOnly && !active.carried)) continue;
    // A report on it came before, and the hub is reading its files: that report accepts it (or, refused, lets it lapse).
    if ((active.heldUntil ?? -Infinity) > t.ctx.monotonicNow) continue;
    withdrawOffer(t, t.state.workflows.get(active.workflowId)!.workOrders[active.workOrderId]!, { reason });
  }
}

/**
 * An agent that starts draining gives back the offers it was carried in report replies and has
 * not accepted: no answer would come for them (a draining SDK drops them), so they would sit
 * offered to it until acceptMs lapsed while other agents could take them. A pushed offer is
 * declined by a draining agent, which puts it back at once.
 */
export function startDraining(t: CommandContext, agentId: string): void {
  if (t.state.agents?.[agentId]?.status !== 'draining') return;
  withdrawOffers(t, agentId, 'the agent is draining', true);
}

/**
 * After a restart no agent is connected yet: offers in flight are withdrawn (their answers are
 * lost) and every agent not already offline gets the grace period to reconnect and keep its work.
 * An agent offline since before that time was recorded counts as offline from now.
 */
export function recoverAfterRestart(t: CommandContext): { withdrawn: number } {
  const work = t.state.work;
  let withdrawn = 0;
  for (const agent of Object.values(t.state.agents ?? {})) {
    if (agent.status !== 'offline' && !work.connected.has(agent.id)) {
      work.disconnected.set(agent.id, t.ctx.monotonicNow);
      t.tx.set(AGENTS_DOC, [agent.id, 'disconnectedSince'], t.ctx.now);
      endConnectionDrain(t, agent);
    }
    if (agent.status === 'offline' && typeof agent.offlineSince !== 'number') {
      t.tx.set(AGENTS_DOC, [agent.id, 'offlineSince'], t.ctx.now);
      work.offline.watch(agent.id, t.ctx.now);
    }
  }
  for (const active of [...work.active.values()]) {
    if (active.phase !== 'offered') continue;
    const order = t.state.workflows.get(active.workflowId)!.workOrders[active.workOrderId]!;
    withdrawOffer(t, order, { reason: 'the hub restarted before the offer was answered' });
    withdrawn++;
  }
  return { withdrawn };
}
