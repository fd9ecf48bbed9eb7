import { PriorityQueue } from './priority-queue.ts';

/** An agent the sweep marked offline, and when. */
export interface OfflineAgent {
  at: number;
  agentId: string;
}

/**
 * Offline agents by the time they went offline, oldest first, so that the sweep finds those due
 * to be forgotten without looking at the others. At most one entry per agent, however often it
 * comes and goes: while one waits, a later time is not queued, and the sweep moves the entry on
 * to the agent's latest time when it comes up.
 */
export class OfflineAgents {
  private readonly queue = new PriorityQueue<OfflineAgent>((a, b) => a.at < b.at);
  /** The agents with an entry in the queue. */
  private readonly watched = new Set<string>();

  /** How many entries wait. */
  get size(): number {
    return this.queue.size;
  }

  /** Queues an agent that went offline at `at`, unless an entry of it waits already. */
  watch(agentId: string, at: number): void {
    if (this.watched.has(agentId)) return;
    this.watched.add(agentId);
    this.queue.push({ at, agentId });
  }

  /** Takes the oldest entry if it is at `dueBefore` or earlier. */
  nextDue(dueBefore: number): OfflineAgent | undefined {
    if (this.queue.size === 0 || this.queue.peek()!.at > dueBefore) return undefined;
    const entry = this.queue.pop()!;
    this.watched.delete(entry.agentId);
    return entry;
  }

  /** Drops every entry (before a rebuild). */
  clear(): void {
    while (this.queue.pop());
    this.watched.clear();
  }
}
