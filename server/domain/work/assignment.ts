/**
 * The assignment policy, as pure functions. The scheduler feeds them; they decide.
 *
 * 1. Queue order: priority first, with ageing. Each priority level is worth `agingMs` of waiting,
 *    so an order's key is `rank × agingMs − queuedAt` and higher keys go first: a low-priority
 *    order that has waited 3 × agingMs is served before a critical one that just arrived. Nothing
 *    starves. Equal keys keep arrival order.
 * 2. Hard filter: the agent handles the task type, holds every required capability, is connected,
 *    not draining or offline, has a free slot, has not declined this order, and taking it keeps
 *    the workflow within maxConcurrentAgents distinct agents.
 * 3. Score (higher wins), each part in 0..1:
 *      4 × preference  — weight of the order's preferred capabilities the agent has / total weight
 *      2 × reliability — (completed + 1) / (completed + failed + 2) on this task type
 *      1 × speed       — fastest candidate's mean duration / this agent's (1 for the fastest; 0.5 when it has none)
 *      1 × capacity    — free slots / maxConcurrentTasks
 * 4. Ties (scores equal to nine decimal places) go to the agent assigned least recently
 *    (never-assigned first), then by id. When a place opens in a workflow at its
 *    maxConcurrentAgents, the free agents look for its work in the same order.
 *
 * chooseAgent applies 3 and 4 to a list of candidates; placement.ts finds its choice among the free
 * agents without scoring each (a differential test holds the two together).
 */
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { Priority } from '../../../shared/schemas/common.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';

export const PRIORITY_RANK: Record<Priority, number> = { low: 0, normal: 1, high: 2, critical: 3 };

export const SCORE_WEIGHTS = { preference: 4, reliability: 2, speed: 1, capacity: 1 } as const;

/** The queue key of an order: higher is served first. */
export function queueKey(priority: Priority, queuedAt: number, agingMs: number): number {
  return PRIORITY_RANK[priority] * agingMs - queuedAt;
}

type OrderShape = Pick<WorkOrder, 'taskType' | 'requirements' | 'preferences' | 'declinedBy'>;

/** Whether the agent can do this kind of work at all: task type and every requirement. */
export function canServe(agent: Pick<Agent, 'capabilities' | 'taskTypes'>, order: Pick<WorkOrder, 'taskType' | 'requirements'>): boolean {
  if (!agent.taskTypes.includes('*') && !agent.taskTypes.includes(order.taskType)) return false;
  // A loop, not every() with a closure: this runs for every candidate of every order placed.
  for (const requirement of order.requirements) if (!agent.capabilities.includes(requirement)) return false;
  return true;
}

/** What the hub knows about an agent and a workflow at the moment of choosing. */
export interface Situation {
  connected: boolean;
  /** The agent already has work in this workflow. */
  activeInWorkflow: boolean;
  /** Distinct agents with work in this workflow now. */
  workflowAgents: number;
  maxConcurrentAgents: number | null;
}

/** The hard filter: may this agent be offered this order now? */
export function eligible(agent: Agent, order: OrderShape, situation: Situation): boolean {
  if (!situation.connected || agent.status === 'draining' || agent.status === 'offline') return false;
  if (agent.load >= agent.maxConcurrentTasks) return false;
  if (order.declinedBy.includes(agent.id)) return false;
  if (situation.maxConcurrentAgents !== null && !situation.activeInWorkflow && situation.workflowAgents >= situation.maxConcurrentAgents) {
    return false;
  }
  return canServe(agent, order);
}

/** An agent's score for an order and its parts. */
export interface Score {
  total: number;
  preference: number;
  reliability: number;
  speed: number;
  capacity: number;
}

/**
 * The parts of an agent's score for an order. `fastestAvgMs` is the best mean among candidates.
 * With `into`, the parts are written there instead of into a new object (chooseAgent scores every
 * candidate of every order placed).
 */
export function score(agent: Agent, order: OrderShape, fastestAvgMs: number | null, into?: Score): Score {
  // Loops rather than Object.entries(): this runs for every candidate of every order placed.
  let totalWeight = 0;
  let held = 0;
  for (const capability in order.preferences) {
    const weight = order.preferences[capability]!;
    totalWeight += weight;
    if (agent.capabilities.includes(capability)) held += weight;
  }
  const preference = totalWeight > 0 ? held / totalWeight : 0;
  const stats = agent.stats.byTaskType[order.taskType];
  const reliability = ((stats?.completed ?? 0) + 1) / ((stats?.completed ?? 0) + (stats?.failed ?? 0) + 2);
  // The fastest candidate's speed is 1, a mean of 0 ms included (0 / 0 would rank it below an untried agent's 0.5).
  const speed = stats && stats.completed > 0 && fastestAvgMs !== null ? (stats.avgMs <= fastestAvgMs ? 1 : fastestAvgMs / stats.avgMs) : 0.5;
  const capacity = (agent.maxConcurrentTasks - agent.load) / agent.maxConcurrentTasks;
  const total =
    SCORE_WEIGHTS.preference * preference + SCORE_WEIGHTS.reliability * reliability + SCORE_WEIGHTS.speed * speed + SCORE_WEIGHTS.capacity * capacity;
  if (!into) return { total, preference, reliability, speed, capacity };
  into.total = total;
  into.preference = preference;
  into.reliability = reliability;
  into.speed = speed;
  into.capacity = capacity;
  return into;
}

/** The best of the eligible candidates for an order, or undefined when there is none. */
export function chooseAgent(candidates: readonly Agent[], order: OrderShape): Agent | undefined {
  let fastest: number | null = null;
  for (const agent of candidates) {
    const stats = agent.stats.byTaskType[order.taskType];
    if (stats && stats.completed > 0 && (fastest === null || stats.avgMs < fastest)) fastest = stats.avgMs;
  }
  let best: Agent | undefined;
  let bestScore = -Infinity;
  const scratch: Score = { total: 0, preference: 0, reliability: 0, speed: 0, capacity: 0 };
  for (const agent of candidates) {
    // Scores are compared to the nearest 1e-9, so that sums made in another order still tie; rounded, not
    // within a tolerance, so that the choice does not depend on the order candidates come in.
    const total = Math.round(score(agent, order, fastest, scratch).total * 1e9);
    if (best === undefined || total > bestScore || (total === bestScore && assignedEarlier(agent, best))) {
      best = agent;
      bestScore = total;
    }
  }
  return best;
}

/** The tie-break as a sort order: least recently assigned first. */
export function byLeastRecentlyAssigned(a: Agent, b: Agent): number {
  return a === b ? 0 : assignedEarlier(a, b) ? -1 : 1;
}

/** Tie-break: never assigned before any assigned; then the longer ago; then by id. */
function assignedEarlier(a: Agent, b: Agent): boolean {
  const at = a.lastAssignedAt ?? -Infinity;
  const bt = b.lastAssignedAt ?? -Infinity;
  return at !== bt ? at < bt : a.id < b.id;
}
