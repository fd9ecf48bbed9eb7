import { StableMap } from '../machinery/stable-map.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import { BTree } from '../machinery/sorted-tree.ts';
import { score, SCORE_WEIGHTS, type Score } from './assignment.ts';

/** Where a change registers how to revert it: the command's transaction. */
export interface UndoLog {
  onUndo(undo: () => void): void;
}

/**
 * An agent as filed under one task type: what placing an order of that type sorts it by, taken
 * from its document (stats on the type, load, maxConcurrentTasks, lastAssignedAt). Never changed:
 * a change of those fields files a new one.
 */
export interface Filed {
  agentId: string;
  /** It has completed work of this type: its speed then depends on the fastest candidate's mean. */
  tried: boolean;
  /**
   * Untried: its whole score for an order without preferences, ×1e9 and rounded as chooseAgent
   * rounds it (its speed is 0.5 whoever the other candidates are). Tried: 2 × reliability + 1 ×
   * capacity, the part of its score no other candidate changes.
   */
  rank: number;
  reliability: number;
  capacity: number;
  /** Its mean duration on the type (tried only). */
  avgMs: number;
  /** lastAssignedAt, −Infinity when never assigned: the tie-break, with the id. */
  assignedAt: number;
}

const compare = (a: number | string, b: number | string) => (a < b ? -1 : a > b ? 1 : 0);
/** The tie-break order of assignment.ts: least recently assigned first, then by id. */
const byTieBreak = (a: Filed, b: Filed) => compare(a.assignedAt, b.assignedAt) || compare(a.agentId, b.agentId);
/** Untried agents, best first: by their score, then the tie-break. */
const byScore = (a: Filed, b: Filed) => compare(b.rank, a.rank) || byTieBreak(a, b);
/**
 * Tried agents by the part of their score that is theirs alone, best first; those with the same
 * reliability, capacity and mean (the same score for any order without preferences) together, in
 * tie-break order.
 */
const byOwnScore = (a: Filed, b: Filed) =>
  compare(b.rank, a.rank) || compare(b.reliability, a.reliability) || compare(b.capacity, a.capacity) || compare(a.avgMs, b.avgMs) || byTieBreak(a, b);
/** Tried agents, fastest first. */
const bySpeed = (a: Filed, b: Filed) => compare(a.avgMs, b.avgMs) || compare(a.agentId, b.agentId);

/** The free agents of one task type, in the orders placement walks them. */
export class AgentsOfType {
  readonly filed = new StableMap<string, Filed>();
  readonly untried = new BTree<Filed, undefined>(undefined, byScore);
  readonly tried = new BTree<Filed, undefined>(undefined, byOwnScore);
  readonly bySpeed = new BTree<Filed, undefined>(undefined, bySpeed);

  /** `*` agents are only listed: their score depends on the order's task type. */
  constructor(readonly ordered: boolean) {}

  /** Replaces what is filed for an agent (nothing when `next` is undefined). */
  put(agentId: string, next: Filed | undefined): void {
    const current = this.filed.get(agentId);
    if (current && this.ordered) {
      if (current.tried) {
        this.tried.delete(current);
        this.bySpeed.delete(current);
      } else this.untried.delete(current);
    }
    if (!next) {
      this.filed.delete(agentId);
      return;
    }
    this.filed.set(agentId, next);
    if (!this.ordered) return;
    if (next.tried) {
      this.tried.set(next, undefined);
      this.bySpeed.set(next, undefined);
    } else this.untried.set(next, undefined);
  }

  /** The first key after every tried agent of `entry`'s class (same reliability, capacity and mean). */
  static afterClass(entry: Filed): Filed {
    return { ...entry, assignedAt: Infinity, agentId: '' };
  }
}

const scratch: Score = { total: 0, preference: 0, reliability: 0, speed: 0, capacity: 0 };

/** How an agent is filed under a task type now. */
export function filedAs(agent: Agent, taskType: string): Filed {
  const parts = score(agent, { taskType, requirements: [], preferences: {}, declinedBy: [] }, null, scratch);
  const stats = agent.stats.byTaskType[taskType];
  const tried = stats !== undefined && stats.completed > 0;
  return {
    agentId: agent.id,
    tried,
    rank: tried ? SCORE_WEIGHTS.reliability * parts.reliability + SCORE_WEIGHTS.capacity * parts.capacity : Math.round(parts.total * 1e9),
    reliability: parts.reliability,
    capacity: parts.capacity,
    avgMs: tried ? stats.avgMs : 0,
    assignedAt: agent.lastAssignedAt ?? -Infinity,
  };
}

const same = (a: Filed, b: Filed) =>
  a.tried === b.tried && a.rank === b.rank && a.reliability === b.reliability && a.capacity === b.capacity && a.avgMs === b.avgMs && a.assignedAt === b.assignedAt;

/**
 * Agents that may have a free slot, under each task type they declared (`*` for any), each filed
 * with what it is sorted by for that type. A superset of the agents that can take work: an agent
 * joins when it may have got a free slot (the scheduler's `freed`), and placement drops one it
 * finds connected-and-free no more, or no longer of that type. What an agent is filed by is kept
 * equal to its document: `rekey` after every change of its stats, load, maxConcurrentTasks or
 * lastAssignedAt; every change registers its undo, so a rolled-back command leaves it as it was.
 */
export class AvailableAgents {
  private readonly byType = new Map<string, AgentsOfType>();

  /** The agents filed under a task type. */
  of(taskType: string): AgentsOfType | undefined {
    return this.byType.get(taskType);
  }

  /** Task types with an agent filed under them. */
  taskTypes(): IterableIterator<string> {
    return this.byType.keys();
  }

  /** Every agent filed under some type, once each. */
  agentIds(): Set<string> {
    const all = new Set<string>();
    for (const agents of this.byType.values()) for (const agentId of agents.filed.keys()) all.add(agentId);
    return all;
  }

  /** Files an agent under a task type, unless it is filed there already. */
  file(taskType: string, agent: Agent, undo?: UndoLog): void {
    let agents = this.byType.get(taskType);
    if (agents?.filed.has(agent.id)) return;
    if (!agents) this.byType.set(taskType, (agents = new AgentsOfType(taskType !== '*')));
    this.change(taskType, agents, agent.id, filedAs(agent, taskType), undo);
  }

  /** Takes an agent out of a task type's agents; false when it was not filed there. */
  unfile(taskType: string, agentId: string, undo?: UndoLog): boolean {
    const agents = this.byType.get(taskType);
    if (!agents?.filed.has(agentId)) return false;
    this.change(taskType, agents, agentId, undefined, undo);
    return true;
  }

  /** Files an agent anew under every type it is filed under, after its document changed; one without a free slot leaves them. */
  rekey(agent: Agent, undo?: UndoLog): void {
    for (const taskType of agent.taskTypes) {
      const agents = this.byType.get(taskType);
      const current = agents?.filed.get(agent.id);
      if (!agents || !current) continue;
      if (agent.load >= agent.maxConcurrentTasks) {
        this.change(taskType, agents, agent.id, undefined, undo);
        continue;
      }
      const next = filedAs(agent, taskType);
      if (!same(current, next)) this.change(taskType, agents, agent.id, next, undo);
    }
  }

  /** Files every agent anew from the documents, dropping those the pool no longer holds (after a rebuild). */
  rekeyAll(pool: Record<string, Agent> | undefined): void {
    for (const [taskType, agents] of [...this.byType]) {
      for (const agentId of [...agents.filed.keys()]) {
        const agent = pool && Object.hasOwn(pool, agentId) ? pool[agentId] : undefined;
        agents.put(agentId, agent ? filedAs(agent, taskType) : undefined);
      }
      if (agents.filed.size === 0) this.byType.delete(taskType);
    }
  }

  private change(taskType: string, agents: AgentsOfType, agentId: string, next: Filed | undefined, undo: UndoLog | undefined): void {
    const previous = agents.filed.get(agentId);
    agents.put(agentId, next);
    if (agents.filed.size === 0) this.byType.delete(taskType);
    undo?.onUndo(() => {
      let restored = this.byType.get(taskType);
      if (!restored) this.byType.set(taskType, (restored = agents));
      restored.put(agentId, previous);
      if (restored.filed.size === 0) this.byType.delete(taskType);
    });
  }
}
