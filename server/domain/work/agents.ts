import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf, ReplyOf } from '../../../shared/contract.ts';
import type { Agent, AgentStatus } from '../../../shared/schemas/agent.ts';
import type { Actor } from '../machinery/actor.ts';
import type { CommandContext } from '../machinery/context.ts';
import { AGENTS_DOC, versionOf, type HubState } from '../machinery/state.ts';
import { reviewAgent } from './unservable.ts';

const RECENT_DURATIONS = 20;

/** The agent with this id, or NOT_FOUND. */
export function requireAgent(state: HubState, agentId: string): Agent {
  const agent = state.agents && Object.hasOwn(state.agents, agentId) ? state.agents[agentId] : undefined;
  if (!agent) throw new HubError('NOT_FOUND', `agent ${agentId} is not registered`);
  return agent;
}

/** The agentId an agent command acts for: the registered agent of its session. */
export function agentIdOf(actor: Actor): string {
  if (!actor.agentId) throw new HubError('FORBIDDEN', 'register the agent first (agent.register)');
  return actor.agentId;
}

/** idle or busy by load, unless draining or offline. */
function statusFor(agent: Agent, load: number): AgentStatus {
  if (agent.status === 'draining' || agent.status === 'offline') return agent.status;
  return load > 0 ? 'busy' : 'idle';
}

/** Changes an agent's load by `delta`, keeping its status in step. */
export function adjustLoad(t: CommandContext, agentId: string, delta: number): void {
  const agent = requireAgent(t.state, agentId);
  const load = Math.max(0, agent.load + delta);
  const fields: Partial<Agent> = { load, status: statusFor(agent, load) };
  if (delta > 0) fields.lastAssignedAt = t.ctx.now;
  t.tx.assign(AGENTS_DOC, [agentId], fields);
  t.state.work.available.rekey(agent, t.tx);
}

/** Counts an outcome in the agent's hub-wide performance. */
export function recordAgentOutcome(
  t: CommandContext,
  agentId: string,
  taskType: string,
  outcome: 'assigned' | 'completed' | 'failed' | 'declined',
  durationMs = 0,
): void {
  recordOutcome(t, agentId, taskType, outcome, durationMs);
  // Its reliability and mean on the type are what placement sorts it by.
  if (outcome === 'completed' || outcome === 'failed') t.state.work.available.rekey(requireAgent(t.state, agentId), t.tx);
}

function recordOutcome(t: CommandContext, agentId: string, taskType: string, outcome: 'assigned' | 'completed' | 'failed' | 'declined', durationMs: number): void {
  const agent = requireAgent(t.state, agentId);
  t.tx.set(AGENTS_DOC, [agentId, 'stats', outcome], agent.stats[outcome] + 1);
  if (outcome !== 'completed' && outcome !== 'failed') return;
  const path = [agentId, 'stats', 'byTaskType', taskType];
  const stats = agent.stats.byTaskType[taskType];
  if (!stats) {
    const completed = outcome === 'completed' ? 1 : 0;
    const recentMs = completed ? [durationMs] : [];
    t.tx.set(AGENTS_DOC, path, { completed, failed: 1 - completed, avgMs: completed ? durationMs : 0, p95Ms: completed ? durationMs : 0, recentMs });
    return;
  }
  if (outcome === 'failed') return t.tx.set(AGENTS_DOC, [...path, 'failed'], stats.failed + 1);
  const completed = stats.completed + 1;
  t.tx.append(AGENTS_DOC, [...path, 'recentMs'], durationMs);
  if (stats.recentMs.length > RECENT_DURATIONS) t.tx.remove(AGENTS_DOC, [...path, 'recentMs', 0]);
  t.tx.assign(AGENTS_DOC, path, {
    completed,
    avgMs: Math.round((stats.avgMs + (durationMs - stats.avgMs) / completed) * 100) / 100,
    p95Ms: nearestRankP95(stats.recentMs),
  });
}

/**
 * The nearest-rank 95th percentile of a few values (an agent's recent durations), found by
 * counting ranks in place: a sorted copy on every completion was a third of what the agent's
 * statistics allocated.
 */
export function nearestRankP95(values: readonly number[]): number {
  const rank = Math.max(0, Math.ceil(values.length * 0.95) - 1);
  for (const candidate of values) {
    let below = 0;
    let atOrBelow = 0;
    for (const value of values) {
      if (value < candidate) below++;
      if (value <= candidate) atOrBelow++;
    }
    if (below <= rank && rank < atOrBelow) return candidate;
  }
  return Number.NaN;
}

/** draining / active and a status note, from the agent itself or a control client. */
export function setAgentStatus(t: CommandContext, agentId: string, input: ParsedRequestOf<'agent', 'agent.status'>): Agent {
  const agent = requireAgent(t.state, agentId);
  // Offline, it keeps its status until it registers again; the word is kept for then.
  if (agent.status === 'offline' && input.status !== undefined) setDrainingOnReturn(t, agent, input.status === 'draining');
  if (input.status === 'draining' && agent.status !== 'offline') {
    // For this connection only, unless it was draining for good already: a plain word (anyone's) is for good.
    const untilDisconnect = input.untilDisconnect === true && (agent.status !== 'draining' || agent.drainingUntilDisconnect === true);
    setDrainingUntilDisconnect(t, agent, untilDisconnect);
    t.tx.set(AGENTS_DOC, [agentId, 'status'], 'draining');
  }
  if (input.status === 'active' && agent.status === 'draining') activate(t, agent);
  if (input.note !== undefined) t.tx.set(AGENTS_DOC, [agentId, 'note'], input.note);
  reviewAgent(t, agentId);
  return agent;
}

/** A draining agent takes work again (idle or busy by its load). */
function activate(t: CommandContext, agent: Agent): void {
  setDrainingUntilDisconnect(t, agent, false);
  t.tx.set(AGENTS_DOC, [agent.id, 'status'], agent.load > 0 ? 'busy' : 'idle');
  t.state.work.freed.add(agent.id);
}

function setDrainingUntilDisconnect(t: CommandContext, agent: Agent, until: boolean): void {
  if (until && !agent.drainingUntilDisconnect) t.tx.set(AGENTS_DOC, [agent.id, 'drainingUntilDisconnect'], true);
  if (!until && agent.drainingUntilDisconnect !== undefined) t.tx.remove(AGENTS_DOC, [agent.id, 'drainingUntilDisconnect']);
}

/** Ends a drain that was for the connection that is gone now (closed, or another registered the id); true if there was one. */
export function endConnectionDrain(t: CommandContext, agent: Agent): boolean {
  if (agent.status !== 'draining' || !agent.drainingUntilDisconnect) return false;
  activate(t, agent);
  reviewAgent(t, agent.id);
  return true;
}

/** Whether an offline agent registers again as draining; the field is there only while it does. */
export function setDrainingOnReturn(t: CommandContext, agent: Agent, draining: boolean): void {
  if (draining && !agent.drainingOnReturn) t.tx.set(AGENTS_DOC, [agent.id, 'drainingOnReturn'], true);
  if (!draining && agent.drainingOnReturn !== undefined) t.tx.remove(AGENTS_DOC, [agent.id, 'drainingOnReturn']);
}

/** The agent pool a page at a time, in id order from the cursor (the last id seen) on. */
export function listAgents(state: HubState, input: ParsedRequestOf<'control', 'agent.list'>): ReplyOf<'control', 'agent.list'> {
  const items: Agent[] = [];
  let more = false;
  for (const agentId of state.work.agentIds.after(input.cursor)) {
    const agent = state.agents?.[agentId];
    if (!agent) continue;
    if (items.length === input.limit) {
      more = true;
      break;
    }
    items.push(agent);
  }
  return { version: versionOf(state, AGENTS_DOC), items, nextCursor: more ? items[items.length - 1]!.id : null };
}
