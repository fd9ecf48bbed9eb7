import type { Agent } from '../../../shared/schemas/agent.ts';
import type { SummaryView } from '../../../shared/schemas/views.ts';

// The hub keeps no history of a workflow's counts or of an agent's load: the page keeps its own,
// from the views it follows, as they change. It starts when the page opens.

/** How long one interval of a timeline lasts. */
export const INTERVAL_MS = 5000;
/** How many intervals a timeline keeps: five minutes. */
export const INTERVALS_KEPT = 60;
/** Charts span at least this many intervals (a minute), so a few first bars are not stretched across the chart. */
export const INTERVALS_SHOWN_AT_LEAST = 12;

/** One interval of a timeline: when it starts (ms since the epoch) and what it holds. */
export interface Interval<T> {
  start: number;
  value: T;
}

/**
 * The last `kept` intervals of `intervalMs`, oldest first. An interval is started when time
 * reaches it, its value built by `next` from the one before (a level carries over, a count starts
 * at zero), so intervals without news are there too.
 */
export class Timeline<T> {
  private readonly intervals: Interval<T>[] = [];

  constructor(
    private readonly next: (previous: T | undefined) => T,
    private readonly intervalMs = INTERVAL_MS,
    private readonly kept = INTERVALS_KEPT,
  ) {}

  /** The value of the interval `now` falls in, after starting the intervals up to it. */
  at(now: number): T {
    const start = Math.floor(now / this.intervalMs) * this.intervalMs;
    const newest = this.intervals[this.intervals.length - 1];
    // A clock set back: the newest interval goes on.
    if (newest && start <= newest.start) return newest.value;
    // After a long silence only the intervals still kept are started.
    const first = newest ? Math.max(newest.start + this.intervalMs, start - (this.kept - 1) * this.intervalMs) : start;
    for (let at = first; at <= start; at += this.intervalMs) {
      this.intervals.push({ start: at, value: this.next(this.intervals[this.intervals.length - 1]?.value) });
    }
    if (this.intervals.length > this.kept) this.intervals.splice(0, this.intervals.length - this.kept);
    return this.intervals[this.intervals.length - 1]!.value;
  }

  /** The intervals kept, up to the one `now` falls in, oldest first. */
  list(now: number): readonly Interval<T>[] {
    this.at(now);
    return this.intervals;
  }
}

/** A workflow's orders in one interval: how many completed and failed during it, and how many were queued and running at its end. */
export interface Throughput {
  completed: number;
  failed: number;
  queued: number;
  running: number;
}

/** Completed and failed orders per interval and the queue depth, from the counts of a workflow's summary view. */
export class ThroughputTimeline {
  private readonly timeline = new Timeline<Throughput>((previous) => ({ completed: 0, failed: 0, queued: previous?.queued ?? 0, running: previous?.running ?? 0 }));
  private seen: { completed: number; failed: number } | undefined;

  /** Takes the counts as they are now: orders that completed or failed since the last counts count in the current interval. */
  observe(counts: SummaryView['workOrderCounts'], now: number): void {
    const interval = this.timeline.at(now);
    // The first counts are the baseline: what ended before the page opened has no interval.
    if (this.seen) {
      interval.completed += Math.max(0, counts.completed - this.seen.completed);
      interval.failed += Math.max(0, counts.failed - this.seen.failed);
    }
    this.seen = { completed: counts.completed, failed: counts.failed };
    interval.queued = counts.queued;
    interval.running = counts.running;
  }

  list(now: number): readonly Interval<Throughput>[] {
    return this.timeline.list(now);
  }
}

/** An agent's load in one interval: the most orders it held at once, and how many at its end. */
export interface Load {
  peak: number;
  last: number;
}

/** Each agent's load per interval, from the agent pool as it changes. */
export class LoadTimelines {
  private readonly byAgent = new Map<string, Timeline<Load>>();

  /** Takes the pool as it is now; agents no longer in it are dropped. */
  observe(agents: readonly Agent[], now: number): void {
    const present = new Set<string>();
    for (const agent of agents) {
      present.add(agent.id);
      let timeline = this.byAgent.get(agent.id);
      if (!timeline) this.byAgent.set(agent.id, (timeline = new Timeline<Load>((previous) => ({ peak: previous?.last ?? 0, last: previous?.last ?? 0 }))));
      const interval = timeline.at(now);
      interval.last = agent.load;
      interval.peak = Math.max(interval.peak, agent.load);
    }
    for (const id of this.byAgent.keys()) if (!present.has(id)) this.byAgent.delete(id);
  }

  /** An agent's intervals, oldest first (none for an agent not seen yet). */
  list(agentId: string, now: number): readonly Interval<Load>[] {
    return this.byAgent.get(agentId)?.list(now) ?? [];
  }
}
