import * as z from 'zod';
import { Id, Percentage, Text, Timestamp } from './common.ts';
import { KpiDirection } from './kpis.ts';
import { ObjectiveStatus } from './objectives.ts';
import { WorkOrderState } from './work-order.ts';
import { WorkflowPause, WorkflowStatus } from './workflow.ts';

/** Where a workflow's `progress` comes from: its stages once it has one, else its work orders when it has some. */
export const ProgressSource = z.enum(['stages', 'orders']);
export type ProgressSource = z.infer<typeof ProgressSource>;

const Counts = <T extends string>(keys: readonly T[]) =>
  z.object(Object.fromEntries(keys.map((k) => [k, z.number().int()])) as Record<T, z.ZodNumber>);

/** The equivalent of the Python package's get_workflow_summary(). */
export const WorkflowSummary = z.object({
  id: Id,
  version: z.number().int(),
  userQuery: Text,
  status: WorkflowStatus,
  failureReason: Text.nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp.nullable(),
  /** Time from start to end, or to now while running; null before the start. */
  durationMs: z.number().int().nullable(),
  /** 0..100, from the stages or the orders: see `progressFrom`. */
  progress: Percentage,
  /**
   * `stages`: the mean of its stages' progress (also with neither stages nor orders); `orders`: it
   * has work orders and no stage, and progress is `orderProgress`. Completed: progress is 100 either way.
   */
  progressFrom: ProgressSource,
  /**
   * The share of its work orders that have ended (completed, failed or cancelled) while it was
   * open, 0..100; null without orders.
   */
  orderProgress: Percentage.nullable(),
  /** How many of its queued work orders no agent that takes work can do (marked `waiting`). */
  unservable: z.number().int(),
  /** Set while it is paused (workflow.pause): none of its orders is offered. */
  paused: WorkflowPause.nullable(),
  /** Its work orders in each state (all eight); absent in summaries archived before it was kept. */
  workOrderCounts: z.record(WorkOrderState, z.number().int()).optional(),
  stages: z.array(z.object({ name: z.string(), progress: Percentage, completed: z.boolean() })),
  steps: Counts(['total', 'pending', 'running', 'completed', 'failed'] as const).extend({
    /** Sum of the durations of finished steps. */
    totalDurationMs: z.number().int(),
  }),
  objectives: Counts(['total', ...ObjectiveStatus.options] as const).extend({
    items: z.array(z.object({ id: Id, name: z.string(), status: ObjectiveStatus, progress: Percentage, target: Text })),
  }),
  kpis: z.object({
    total: z.number().int(),
    met: z.number().int(),
    items: z.array(
      z.object({
        id: Id,
        name: z.string(),
        current: z.number().nullable(),
        target: z.number(),
        unit: z.string(),
        direction: KpiDirection,
        met: z.boolean(),
      }),
    ),
  }),
});
export type WorkflowSummary = z.infer<typeof WorkflowSummary>;
