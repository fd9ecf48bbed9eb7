import * as z from 'zod';
import { Capability } from './agent.ts';
import { Id, Page, Percentage, Text, Timestamp, keyName } from './common.ts';
import { DataReference } from './data.ts';
import { Kpi } from './kpis.ts';
import { Transformation } from './lineage.ts';
import { Objective } from './objectives.ts';
import { Transfer } from './transfer.ts';
import { Step } from './steps.ts';
import { WorkOrder, WorkOrderState } from './work-order.ts';

/** A workflow's lifecycle: pending → in_progress → completed | failed | cancelled. */
export const WorkflowStatus = z.enum(['pending', 'in_progress', 'completed', 'failed', 'cancelled']);
export type WorkflowStatus = z.infer<typeof WorkflowStatus>;

/** Per-workflow settings, as the Python package's `workflow_config`. */
export const WorkflowConfig = z.strictObject({
  /** Write JSON, Markdown and HTML reports to `outputFolder` periodically and when the workflow ends. */
  enableAutoDocumentation: z.boolean().default(false),
  /** Seconds between automatic reports. */
  documentationInterval: z.number().int().min(1).max(86_400).default(300),
  /** How many distinct agents may work on this workflow at once; null means no limit. */
  maxConcurrentAgents: z.number().int().min(1).max(100_000).nullable().default(null),
  /** Check registered local files (existence, size, sha256). */
  enableDataValidation: z.boolean().default(true),
});
export type WorkflowConfig = z.infer<typeof WorkflowConfig>;

/** Progress of one named stage. */
export const StageProgress = z.object({
  name: z.string(),
  progress: Percentage,
  startedAt: Timestamp,
  updatedAt: Timestamp,
  completedAt: Timestamp.nullable(),
});
export type StageProgress = z.infer<typeof StageProgress>;

/** An agent's record within one workflow. */
export const WorkflowAgent = z.object({
  agentId: Id,
  /**
   * The agent's type and capabilities when it first worked here, so that the workflow describes
   * its agents after they leave the pool. Absent in records written before they were kept.
   */
  agentType: z.string().optional(),
  capabilities: z.array(Capability).optional(),
  assigned: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  declined: z.number().int(),
  /** Total running time of its completed attempts here. */
  busyMs: z.number().int(),
});
export type WorkflowAgent = z.infer<typeof WorkflowAgent>;

/** Why a workflow's work is not offered (workflow.pause): when, which client (its token's name) and its reason. */
export const WorkflowPause = z.object({
  at: Timestamp,
  by: z.string(),
  reason: Text.nullable(),
});
export type WorkflowPause = z.infer<typeof WorkflowPause>;

/** The authoritative state of one workflow: the document monitors mirror and patches describe. */
export const Workflow = z.object({
  id: Id,
  userQuery: Text,
  outputFolder: z.string(),
  config: WorkflowConfig,
  status: WorkflowStatus,
  failureReason: Text.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp.nullable(),
  /**
   * 0..100: the mean progress of its stages; while it has work orders and no stage, `orderProgress`.
   * 100 once completed; failing or cancelling keeps the value it had.
   */
  progress: Percentage,
  /**
   * The share of its work orders that have ended (completed, failed or cancelled), 0..100, kept as
   * they change while it is open (the orders its end cancels do not count); null without orders.
   * Absent in workflows written before it was kept.
   */
  orderProgress: Percentage.nullable().optional(),
  stages: z.record(z.string(), StageProgress),
  steps: z.record(z.string(), Step),
  objectives: z.record(z.string(), Objective),
  kpis: z.record(z.string(), Kpi),
  workOrders: z.record(z.string(), WorkOrder),
  /** How many work orders are in each state, kept as they change. */
  workOrderCounts: z.record(WorkOrderState, z.number().int()),
  /**
   * How many of its queued orders no agent that takes work can do (those with `waiting` set),
   * kept as they change. Absent in workflows written before it was kept.
   */
  unservable: z.number().int().optional(),
  /**
   * Set while it is paused (workflow.pause): none of its work orders is offered; null otherwise.
   * Absent (not paused) in workflows written before it was kept.
   */
  paused: WorkflowPause.nullable().optional(),
  /** The agents that worked on this workflow and how they did here. */
  agents: z.record(z.string(), WorkflowAgent),
  /** The data inventory: references by id, with provenance and version history. */
  data: z.record(z.string(), DataReference),
  /** Transformations linking input references to output references, by id. */
  lineage: z.record(z.string(), Transformation),
});
export type Workflow = z.infer<typeof Workflow>;

export const CreateWorkflowInput = z.strictObject({
  /** Optional caller-chosen id; creating an existing id is refused with CONFLICT. */
  id: Id.optional(),
  userQuery: Text.min(1),
  /** Where reports are written; defaults to `<dataDir>/workflows/<id>`. */
  outputFolder: z.string().min(1).max(1024).optional(),
  config: WorkflowConfig.default(WorkflowConfig.parse({})),
});

export const WorkflowRef = z.strictObject({ workflowId: Id });
export const FailWorkflowInput = z.strictObject({ workflowId: Id, reason: Text.min(1) });
export const CancelWorkflowInput = z.strictObject({ workflowId: Id, reason: Text.optional() });
export const PauseWorkflowInput = z.strictObject({ workflowId: Id, reason: Text.min(1).optional() });

export const UpdateProgressInput = z.strictObject({
  workflowId: Id,
  stage: keyName(200),
  percentage: Percentage,
});

export const ListWorkflowsInput = z.strictObject({
  status: WorkflowStatus.optional(),
  /** Oldest first (`asc`) or newest first (`desc`), by creation time, then id. */
  order: z.enum(['asc', 'desc']).default('asc'),
  ...Page,
});

/** The short form of a workflow used in lists. */
export const WorkflowHeader = Workflow.pick({
  id: true,
  userQuery: true,
  status: true,
  progress: true,
  createdAt: true,
  updatedAt: true,
  startedAt: true,
  endedAt: true,
  workOrderCounts: true,
  unservable: true,
  paused: true,
});
export type WorkflowHeader = z.infer<typeof WorkflowHeader>;

/** The header of a workflow (or of a larger header): its fields only, its counts copied. */
export function workflowHeader(workflow: WorkflowHeader): WorkflowHeader {
  const { id, userQuery, status, progress, createdAt, updatedAt, startedAt, endedAt, workOrderCounts, unservable, paused } = workflow;
  return { id, userQuery, status, progress, createdAt, updatedAt, startedAt, endedAt, workOrderCounts: { ...workOrderCounts }, unservable: unservable ?? 0, paused: paused ?? null };
}

/**
 * The order of workflow.list: by creation time (`createdAt`), then by id, so that workflows created
 * in the same millisecond have one order wherever they are kept.
 */
export function compareCreation(createdAt: number, id: string, otherCreatedAt: number, otherId: string): number {
  if (createdAt !== otherCreatedAt) return createdAt < otherCreatedAt ? -1 : 1;
  return id < otherId ? -1 : id > otherId ? 1 : 0;
}

/** A workflow together with the version of the state it shows. */
export const VersionedWorkflow = z.object({ version: z.number().int(), workflow: Workflow });
export type VersionedWorkflow = z.infer<typeof VersionedWorkflow>;

/** The reply to workflow.get: the workflow inline, or when its JSON is over 1 MB, a transfer to read it from. */
export const WorkflowReply = z.object({ version: z.number().int(), workflow: Workflow.optional(), transfer: Transfer.optional() });

/** The reply to a lifecycle change: the new status and the version it produced. */
export const StatusReply = z.object({ version: z.number().int(), status: WorkflowStatus });

/** The reply to workflow.pause and workflow.resume: the workflow's status and pause as they now are, and the version. */
export const PauseReply = StatusReply.extend({ paused: WorkflowPause.nullable() });
