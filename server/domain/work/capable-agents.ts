import type { Agent } from '../../../shared/schemas/agent.ts';
import type { Waiting } from '../../../shared/schemas/work-order.ts';
import type { UndoLog } from './free-agents.ts';

/** What an agent that takes work is filed with: the task types it declares and the capabilities it holds. */
export interface Filing {
  taskTypes: readonly string[];
  capabilities: readonly string[];
}

/** Whether an agent takes work: in the pool, neither draining nor offline (one in its grace period counts). */
export function takesWork(agent: Pick<Agent, 'status'>): boolean {
  return agent.status !== 'offline' && agent.status !== 'draining';
}

/** What an agent that takes work is filed with: copies of its task types and capabilities. */
export function filingFrom(agent: Pick<Agent, 'taskTypes' | 'capabilities'>): Filing {
  return { taskTypes: [...agent.taskTypes], capabilities: [...agent.capabilities] };
}

/**
 * Queued orders of any workflow that need the same kind of agent: one task type, one set of
 * requirements. Its buckets (one per workflow, of type B) hold them; they all carry its `waiting`.
 */
export interface Need<B> {
  key: string;
  taskType: string;
  /** Sorted, each once. */
  requirements: string[];
  buckets: Set<B>;
  /** What its orders are marked with: null while an agent that takes work can do them. */
  waiting: Waiting | null;
  /**
   * How many agents that take work can do its orders: counted when a decline first asks (see
   * `markerFor`), then moved as agents come and go (reviewAgent); undefined until then.
   */
  serving?: number | undefined;
}

/** The marker of a queued order that every agent taking work and able to do it declined. */
const ALL_DECLINED: Waiting = Object.freeze({ reason: 'all_declined' });

/** The requirements of an order as one string: most have none or one, so no sorted copy for them. */
export function requirementsKey(requirements: readonly string[]): string {
  return requirements.length < 2 ? (requirements[0] ?? '') : [...new Set(requirements)].sort().join('\u0001');
}

/** Whether two markers say the same. */
export function sameWaiting(a: Waiting | null, b: Waiting | null): boolean {
  if (a === null || b === null) return a === b;
  return a.reason === b.reason && a.taskType === b.taskType && (a.missing ?? []).join('\u0001') === (b.missing ?? []).join('\u0001');
}

/** Whether an agent filed so can do the work of a need: its task type (or `*`) and every requirement. */
export function serves(filing: Filing, need: Pick<Need<unknown>, 'taskType' | 'requirements'>): boolean {
  if (!filing.taskTypes.includes('*') && !filing.taskTypes.includes(need.taskType)) return false;
  for (const requirement of need.requirements) if (!filing.capabilities.includes(requirement)) return false;
  return true;
}

/**
 * The agents that take work (in the pool, neither draining nor offline), filed under each task type
 * they declare, and the needs of the queued orders: which kinds of work they can do. Derived from
 * the documents (the agents' status, task types and capabilities; the queued orders), so a rebuild
 * makes it again. A need's verdict is kept, not looked up per order: an agent that comes or goes
 * costs a look at the needs of its task types (all of them for `*`), and only a need whose verdict
 * changes costs a walk of its orders.
 */
export class CapableAgents<B> {
  /** Task type (or `*`) → the agents that take work and declare it. A set left empty is dropped. */
  private readonly byType = new Map<string, Set<string>>();
  private readonly filings = new Map<string, Filing>();
  private readonly needs = new Map<string, Need<B>>();
  private readonly needsByType = new Map<string, Set<Need<B>>>();
  /**
   * Queued orders whose marker may differ from their need's: found by a rebuild (an order whose
   * backoff ended while the hub was down, or a document written before markers were kept). The
   * scheduler settles them after the next command.
   */
  readonly unsettled: Array<{ workflowId: string; workOrderId: string }> = [];

  /** What an agent is filed with, if it takes work. */
  filingOf(agentId: string): Filing | undefined {
    return this.filings.get(agentId);
  }

  /** Files an agent that takes work under each task type it declares. */
  file(agentId: string, filing: Filing): void {
    this.filings.set(agentId, filing);
    for (const type of filing.taskTypes) {
      let agents = this.byType.get(type);
      if (!agents) this.byType.set(type, (agents = new Set()));
      agents.add(agentId);
    }
  }

  /** Takes an agent out (it went offline, began draining, left the pool or is filed again). */
  unfile(agentId: string): void {
    const filing = this.filings.get(agentId);
    if (!filing) return;
    this.filings.delete(agentId);
    for (const type of filing.taskTypes) {
      const agents = this.byType.get(type);
      agents?.delete(agentId);
      if (agents?.size === 0) this.byType.delete(type);
    }
  }

  /** How many agents that take work declare exactly this task type (`*` counted under `*` only). */
  count(taskType: string): number {
    return this.byType.get(taskType)?.size ?? 0;
  }

  /** Whether an agent that takes work declares this task type or `*`: O(1). */
  declares(taskType: string): boolean {
    return this.byType.has(taskType) || this.byType.has('*');
  }

  /**
   * The marker orders of this kind get now: O(1) without requirements; with some, the agents of the
   * task type are looked at until one holds them all (only an unservable kind costs all of them).
   */
  verdict(need: Pick<Need<B>, 'taskType' | 'requirements'>): Waiting | null {
    if (!this.declares(need.taskType)) return { reason: 'no_capable_agent', taskType: need.taskType };
    if (need.requirements.length === 0) return null;
    for (const type of need.taskType === '*' ? ['*'] : [need.taskType, '*']) {
      for (const agentId of this.byType.get(type) ?? []) if (serves(this.filings.get(agentId)!, need)) return null;
    }
    return { reason: 'no_capable_agent', missing: need.requirements };
  }

  /** How many agents that take work can do a need's work: counted once (O(agents of its task type)), then kept. */
  serving(need: Need<B>, undo?: UndoLog): number {
    if (need.serving !== undefined) return need.serving;
    let serving = 0;
    for (const agentId of this.byType.get(need.taskType) ?? []) if (serves(this.filings.get(agentId)!, need)) serving++;
    // An agent declaring both the task type and `*` was counted above.
    if (need.taskType !== '*') for (const agentId of this.byType.get('*') ?? []) if (!this.filings.get(agentId)!.taskTypes.includes(need.taskType) && serves(this.filings.get(agentId)!, need)) serving++;
    this.setServing(need, serving, undo);
    return serving;
  }

  /** Moves a need's count of agents that can do its work, if it is kept (an agent came or went). */
  moveServing(need: Need<B>, delta: number, undo: UndoLog): void {
    if (need.serving !== undefined && delta !== 0) this.setServing(need, need.serving + delta, undo);
  }

  private setServing(need: Need<B>, serving: number, undo: UndoLog | undefined): void {
    const before = need.serving;
    need.serving = serving;
    undo?.onUndo(() => (need.serving = before));
  }

  /**
   * The marker of a queued order of this need that these agents declined: the need's, or else
   * `all_declined` when every agent that takes work and can do it is among them. O(its declines).
   */
  markerFor(need: Need<B>, declinedBy: readonly string[], undo?: UndoLog): Waiting | null {
    if (need.waiting !== null || declinedBy.length === 0) return need.waiting;
    const serving = this.serving(need, undo);
    if (declinedBy.length < serving) return null;
    let declined = 0;
    for (const agentId of new Set(declinedBy)) {
      const filing = this.filings.get(agentId);
      if (filing && serves(filing, need)) declined++;
    }
    return declined >= serving ? ALL_DECLINED : null;
  }

  /** The need of orders of this task type and requirements, made (with its verdict) if there is none; a bucket then joins it. */
  needOf(taskType: string, requirements: readonly string[]): Need<B> {
    const key = `${taskType}\u0000${requirementsKey(requirements)}`;
    let need = this.needs.get(key);
    if (!need) {
      const sorted = [...new Set(requirements)].sort();
      need = { key, taskType, requirements: sorted, buckets: new Set(), waiting: null };
      need.waiting = this.verdict(need);
      this.needs.set(key, need);
      let ofType = this.needsByType.get(taskType);
      if (!ofType) this.needsByType.set(taskType, (ofType = new Set()));
      ofType.add(need);
    }
    return need;
  }

  /** A bucket leaves its need; the need goes with its last bucket. */
  leave(need: Need<B>, bucket: B): void {
    need.buckets.delete(bucket);
    if (need.buckets.size > 0 || this.needs.get(need.key) !== need) return;
    this.needs.delete(need.key);
    const ofType = this.needsByType.get(need.taskType)!;
    ofType.delete(need);
    if (ofType.size === 0) this.needsByType.delete(need.taskType);
  }

  /** The needs an agent declaring these task types may serve: those of each type, or every need for `*`. */
  needsFor(taskTypes: Iterable<string>): Set<Need<B>> {
    const types = new Set(taskTypes);
    if (types.has('*')) return new Set(this.needs.values());
    const found = new Set<Need<B>>();
    for (const type of types) for (const need of this.needsByType.get(type) ?? []) found.add(need);
    return found;
  }

  /** How many needs there are (for tests of what the index keeps). */
  get size(): number {
    return this.needs.size;
  }

  /** Forgets everything (before a rebuild). */
  clear(): void {
    this.byType.clear();
    this.filings.clear();
    this.needs.clear();
    this.needsByType.clear();
    this.unsettled.length = 0;
  }
}
