import type { StableMap } from '../machinery/stable-map.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { CommandContext } from '../machinery/context.ts';
import { byLeastRecentlyAssigned, chooseAgent, eligible, score, SCORE_WEIGHTS, type Score, type Situation } from './assignment.ts';
import { AgentsOfType, type Filed } from './free-agents.ts';

/**
 * Which free agent an order goes to: chooseAgent's choice over every eligible agent (the policy of
 * assignment.ts), found without scoring every free agent when the order has no preferences.
 *
 * Without preferences an agent's score is 2 × reliability + 1 × capacity, its own, plus its speed,
 * which depends on the fastest eligible candidate's mean. So, per task type (free-agents.ts):
 * - the fastest mean is the first eligible agent's in the tried agents sorted by mean;
 * - agents new to the type have speed 0.5 whatever the candidates: sorted by their whole score
 *   and the tie-break, the first eligible one is the best of them;
 * - tried agents are walked best own part first, and the walk stops at the first whose own part
 *   plus the fastest's speed (no candidate is faster) rounds below the best score found: it, and
 *   every one after it, would lose. After an eligible agent, the rest of its class (same
 *   reliability, capacity and mean, so the same score, later in the tie-break) is skipped.
 * `*` agents, whose score depends on the order's type, are all looked at, as are the agents of an
 * order with preferences (whose part, 4 × preference, depends on each agent's capabilities and the
 * order: scanned whole, as before) and those of a workflow at its maxConcurrentAgents (only agents
 * already in it qualify). A walk that passes its budget (the reliable agents the slow ones, so that
 * the bound prunes little) falls back to the whole scan: the same choice, at about its old cost.
 */
export function choosePlacement(t: CommandContext, order: WorkOrder): Agent | undefined {
  const holders = t.state.work.workflowAgents.get(order.workflowId);
  const placing: Placing = {
    t,
    order,
    holders,
    situation: {
      connected: true,
      activeInWorkflow: false,
      workflowAgents: holders?.size ?? 0,
      maxConcurrentAgents: t.state.workflows.get(order.workflowId)!.config.maxConcurrentAgents,
    },
    stale: [],
  };
  const { situation } = placing;
  if (situation.maxConcurrentAgents !== null && situation.workflowAgents >= situation.maxConcurrentAgents) {
    const candidates: Agent[] = [];
    for (const agentId of holders!.keys()) {
      const agent = t.state.agents?.[agentId];
      if (hasFreeSlot(t, agent) && eligible(agent, order, { ...situation, activeInWorkflow: true })) candidates.push(agent);
    }
    return chooseAgent(candidates, order);
  }
  const agents = t.state.work.available.of(order.taskType);
  const walked = agents?.ordered && !hasPreferences(order) ? walk(placing, agents) : undefined;
  let chosen = walked?.agent;
  if (!walked) {
    const candidates: Agent[] = [];
    gather(placing, order.taskType, candidates);
    if (order.taskType !== '*') gather(placing, '*', candidates);
    chosen = chooseAgent(candidates, order);
  }
  for (const [taskType, agentId] of placing.stale) t.state.work.available.unfile(taskType, agentId, t.tx);
  return chosen;
}

/** What placing one order knows while it looks for an agent. */
interface Placing {
  t: CommandContext;
  order: WorkOrder;
  holders: StableMap<string, number> | undefined;
  situation: Situation;
  /** Agents found without a free slot, or no longer of the type they are filed under: they leave it after the search. */
  stale: Array<[string, string]>;
}

function hasPreferences(order: WorkOrder): boolean {
  for (const _ in order.preferences) return true;
  return false;
}

/** Whether an agent is connected, neither draining nor offline, and has a free slot. */
function hasFreeSlot(t: CommandContext, agent: Agent | undefined): agent is Agent {
  return agent !== undefined && agent.load < agent.maxConcurrentTasks && agent.status !== 'draining' && agent.status !== 'offline' && t.state.work.connected.has(agent.id);
}

/** The agent filed as `agentId` under `taskType` if it may take the order; one found not free (or not of that type) is marked stale. */
function candidate(placing: Placing, taskType: string, agentId: string): Agent | undefined {
  const { t, order, holders, situation } = placing;
  const agent = t.state.agents?.[agentId];
  if (!hasFreeSlot(t, agent) || !agent.taskTypes.includes(taskType)) {
    placing.stale.push([taskType, agentId]);
    return undefined;
  }
  // One also filed under the order's own type is looked at with it.
  if (taskType !== order.taskType && agent.taskTypes.includes(order.taskType)) return undefined;
  situation.activeInWorkflow = holders?.has(agentId) ?? false;
  return eligible(agent, order, situation) ? agent : undefined;
}

/** Adds every eligible agent filed under `taskType` to `candidates`. */
function gather(placing: Placing, taskType: string, candidates: Agent[]): void {
  for (const agentId of placing.t.state.work.available.of(taskType)?.filed.keys() ?? []) {
    const agent = candidate(placing, taskType, agentId);
    if (agent) candidates.push(agent);
  }
}

/** The best of the candidates seen so far, compared as chooseAgent compares them. */
class Best {
  agent: Agent | undefined;
  /** Its score ×1e9, rounded. */
  total = -Infinity;
  private readonly scratch: Score = { total: 0, preference: 0, reliability: 0, speed: 0, capacity: 0 };

  constructor(
    private readonly order: WorkOrder,
    private readonly fastestAvgMs: number | null,
  ) {}

  consider(agent: Agent): void {
    const total = Math.round(score(agent, this.order, this.fastestAvgMs, this.scratch).total * 1e9);
    if (this.agent === undefined || total > this.total || (total === this.total && byLeastRecentlyAssigned(agent, this.agent) < 0)) {
      this.agent = agent;
      this.total = total;
    }
  }
}

/**
 * Far above the rounding error of a score's sum (a few 1e-15) and far below the 1e-9 scores are
 * compared at: a bound this much too high only means looking at an agent more.
 */
const SLACK = 1e-12;

/**
 * How many tried agents a walk looks at (plus one per 16 filed) before it gives up for the full
 * scan: when the agents' own parts and speeds pull apart (the reliable ones slow), the bound prunes
 * little, and a visit costs a few times what scoring an agent in a scan does.
 */
const WALK_BUDGET = 32;

const sameClass = (a: Filed, b: Filed) => a.rank === b.rank && a.reliability === b.reliability && a.capacity === b.capacity && a.avgMs === b.avgMs;

/**
 * The choice for an order without preferences, from the sorted agents of its type and the `*`
 * agents: `{ agent }`, or undefined when the walk gave up (see WALK_BUDGET).
 */
function walk(placing: Placing, agents: AgentsOfType): { agent: Agent | undefined } | undefined {
  const { order } = placing;
  const type = order.taskType;
  const wild: Agent[] = [];
  gather(placing, '*', wild);
  let fastest: number | null = null;
  for (const agent of wild) {
    const stats = agent.stats.byTaskType[type];
    if (stats && stats.completed > 0 && (fastest === null || stats.avgMs < fastest)) fastest = stats.avgMs;
  }
  for (const entry of agents.bySpeed.keys()) {
    if (!candidate(placing, type, entry.agentId)) continue;
    if (fastest === null || entry.avgMs < fastest) fastest = entry.avgMs;
    break;
  }
  const best = new Best(order, fastest);
  for (const agent of wild) best.consider(agent);
  for (const entry of agents.untried.keys()) {
    const agent = candidate(placing, type, entry.agentId);
    if (!agent) continue;
    best.consider(agent);
    break;
  }
  // No eligible tried agent of this type (nor `*` one): nothing more to look at.
  if (fastest === null) return { agent: best.agent };
  // The speed of the fastest candidate (1): nobody's is higher.
  const topSpeed = SCORE_WEIGHTS.speed;
  let budget = WALK_BUDGET + (agents.filed.size >> 4);
  let entries = agents.tried.keys();
  let scored: Filed | undefined;
  for (let next = entries.next(); !next.done; next = entries.next()) {
    let entry: Filed = next.value;
    if (scored && sameClass(entry, scored)) {
      // The rest of the class of the agent just scored: the same score, later in the tie-break.
      entries = agents.tried.keys(AgentsOfType.afterClass(scored));
      scored = undefined;
      next = entries.next();
      if (next.done) break;
      entry = next.value;
    }
    if (best.agent !== undefined && Math.round((entry.rank + topSpeed + SLACK) * 1e9) < best.total) break;
    if (--budget < 0) return undefined;
    const agent = candidate(placing, type, entry.agentId);
    if (!agent) continue;
    best.consider(agent);
    scored = entry;
  }
  return { agent: best.agent };
}
