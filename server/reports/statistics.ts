import type { Agent } from '../../shared/schemas/agent.ts';
import { AttemptOutcome, WorkOrderState, type WorkOrder } from '../../shared/schemas/work-order.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';

/** How a finished attempt ended. */
type Outcome = (typeof AttemptOutcome.options)[number];
import type { DataReferenceRow } from './data-inventory.ts';
import { compareText } from './ordering.ts';

/** Mean and 95th percentile of a set of durations; null values when there are none. */
export interface DurationStats {
  count: number;
  meanMs: number | null;
  p95Ms: number | null;
}

/** How the workflow's work orders went. */
export interface WorkOrderStats {
  total: number;
  byState: Record<WorkOrderState, number>;
  /** Attempts that started, over all orders. */
  attempts: number;
  /** Attempts beyond the first, over all orders. */
  retries: number;
  /** Orders that needed more than one attempt. */
  retriedOrders: number;
  /** How the finished attempts ended. */
  attemptOutcomes: Record<Outcome, number>;
  /** First start to end of completed orders (retries and backoff included). */
  completedDuration: DurationStats;
  /** Start to end of each finished attempt. */
  attemptDuration: DurationStats;
}

/** An agent's performance in this workflow, with its type and capabilities. */
export interface AgentPerformance {
  agentId: string;
  /**
   * As the workflow recorded it when the agent first worked there; for a record older than that,
   * from the hub-wide pool, and null when the agent is no longer in it.
   */
  agentType: string | null;
  capabilities: string[] | null;
  assigned: number;
  completed: number;
  failed: number;
  declined: number;
  busyMs: number;
  /** completed / (completed + failed), null before either happened. */
  successRate: number | null;
  /** Mean running time of its completed attempts. */
  meanTaskMs: number | null;
}

/** Counts of the data inventory. */
export interface DataInventoryStats {
  count: number;
  byStatus: Record<string, number>;
  /** Sum of the known sizes in bytes. */
  totalBytes: number;
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

/** Mean and nearest-rank p95 of durations (ms), rounded to whole milliseconds. */
export function durationStats(durations: number[]): DurationStats {
  if (durations.length === 0) return { count: 0, meanMs: null, p95Ms: null };
  const sorted = [...durations].sort((a, b) => a - b);
  const sum = sorted.reduce((total, d) => total + d, 0);
  const rank = Math.ceil(0.95 * sorted.length) - 1;
  return { count: sorted.length, meanMs: Math.round(sum / sorted.length), p95Ms: sorted[rank]! };
}

/** Counts, attempts, retries and durations over all work orders of the workflow. */
export function workOrderStats(orders: WorkOrder[]): WorkOrderStats {
  const byState = zeros(WorkOrderState.options);
  const attemptOutcomes = zeros(AttemptOutcome.options);
  const completed: number[] = [];
  const attemptDurations: number[] = [];
  let attempts = 0;
  let retries = 0;
  let retriedOrders = 0;
  for (const order of orders) {
    byState[order.state]++;
    attempts += order.attempts;
    retries += Math.max(0, order.attempts - 1);
    if (order.attempts > 1) retriedOrders++;
    for (const record of order.history) {
      attemptOutcomes[record.outcome]++;
      // Wall-clock times: one stepped back mid-attempt ends it before it started, which counts as 0.
      attemptDurations.push(Math.max(0, record.endedAt - record.startedAt));
    }
    if (order.state === 'completed' && order.startedAt !== null && order.endedAt !== null) completed.push(Math.max(0, order.endedAt - order.startedAt));
  }
  return {
    total: orders.length,
    byState,
    attempts,
    retries,
    retriedOrders,
    attemptOutcomes,
    completedDuration: durationStats(completed),
    attemptDuration: durationStats(attemptDurations),
  };
}

/**
 * The performance of the agents that worked on the workflow, by agent id, all from the workflow's
 * own records: the pool changes without the workflow's version changing (and forgets agents), and
 * a report must be the same for the same version. Only a record written before agent types were
 * kept takes agentType and capabilities from the pool.
 */
export function agentPerformance(workflow: Workflow, pool: Record<string, Agent>): AgentPerformance[] {
  return Object.values(workflow.agents)
    .sort((a, b) => compareText(a.agentId, b.agentId))
    .map((record) => {
      const agent = Object.hasOwn(pool, record.agentId) ? pool[record.agentId] : undefined;
      const capabilities = record.capabilities ?? agent?.capabilities;
      const finished = record.completed + record.failed;
      return {
        agentId: record.agentId,
        agentType: record.agentType ?? agent?.agentType ?? null,
        capabilities: capabilities ? [...capabilities].sort(compareText) : null,
        assigned: record.assigned,
        completed: record.completed,
        failed: record.failed,
        declined: record.declined,
        busyMs: record.busyMs,
        successRate: finished === 0 ? null : record.completed / finished,
        meanTaskMs: record.completed === 0 ? null : Math.round(record.busyMs / record.completed),
      };
    });
}

/** Counts of the data references by status, and their total known size. */
export function dataInventoryStats(rows: DataReferenceRow[]): DataInventoryStats {
  // A Map, because a status is user text and could be "__proto__".
  const byStatus = new Map<string, number>();
  let totalBytes = 0;
  for (const row of rows) {
    byStatus.set(row.status, (byStatus.get(row.status) ?? 0) + 1);
    totalBytes += row.size ?? 0;
  }
  const statuses = [...byStatus.keys()].sort(compareText);
  return { count: rows.length, byStatus: Object.fromEntries(statuses.map((s) => [s, byStatus.get(s)!])), totalBytes };
}
