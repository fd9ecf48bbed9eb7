import * as z from 'zod';
import { AttemptRef, Id, Page, Percentage, Priority, Text, Timestamp, boundedJson, keyedRecord, keyName } from './common.ts';
import { Capability } from './agent.ts';
import { DataReferenceSpec } from './data.ts';

/** A work order's life. completed, failed and cancelled are final. */
export const WorkOrderState = z.enum(['pending', 'blocked', 'queued', 'offered', 'running', 'completed', 'failed', 'cancelled']);
export type WorkOrderState = z.infer<typeof WorkOrderState>;

/** The time limits of a work order. */
export const WorkOrderTimeouts = z.strictObject({
  /** How long an offered agent has to accept before the offer goes to someone else. */
  acceptMs: z.number().int().min(100).max(600_000).default(10_000),
  /** How long a running attempt lives without a heartbeat or progress before it is retried. */
  leaseMs: z.number().int().min(500).max(86_400_000).default(30_000),
  /** Time from first queued to completion; past it the order fails. null: no limit. */
  overallMs: z.number().int().min(1000).max(30 * 86_400_000).nullable().default(null),
});

/** How one attempt ended. */
export const AttemptOutcome = z.enum(['completed', 'failed', 'lease_expired', 'agent_lost', 'cancelled']);

/** One finished attempt, kept for the timeline and for debugging retries. */
export const AttemptRecord = z.object({
  number: z.number().int(),
  agentId: Id,
  outcome: AttemptOutcome,
  error: Text.nullable(),
  startedAt: Timestamp,
  endedAt: Timestamp,
});

/** The attempt in flight: offered to, or running on, one agent. */
export const CurrentAttempt = z.object({
  number: z.number().int(),
  token: z.string(),
  agentId: Id,
  offeredAt: Timestamp,
  acceptedAt: Timestamp.nullable(),
});

/**
 * Why a queued order is offered to nobody: no agent that takes work can do it (`no_capable_agent`,
 * with exactly one of `taskType` and `missing`), or every one that can declined it
 * (`all_declined`, with neither: they are in its `declinedBy`, until `retryAt`). An agent takes work while it is in
 * the pool and neither draining nor offline; one within its grace period after a disconnect still
 * counts, as it is expected back with its work.
 */
export const Waiting = z.object({
  reason: z.enum(['no_capable_agent', 'all_declined']),
  /** Set when no such agent declares the order's task type (nor `*`): that task type. */
  taskType: z.string().optional(),
  /**
   * Set when agents of the task type take work but none holds every requirement: the order's
   * requirements (sorted). Which of them each agent lacks is in the agents' `capabilities`.
   */
  missing: z.array(Capability).optional(),
  /**
   * Set on `all_declined` while the hub forgets declines (its `declinedRetryMs`): when (wall clock,
   * ms) its `declinedBy` is emptied and it is offered again, to the agents that declined it too.
   */
  retryAt: Timestamp.optional(),
});
export type Waiting = z.infer<typeof Waiting>;

/** A unit of work for one agent. */
export const WorkOrder = z.object({
  id: Id,
  workflowId: Id,
  taskType: z.string(),
  description: Text,
  requirements: z.array(Capability),
  preferences: z.record(z.string(), z.number()),
  priority: Priority,
  input: z.unknown(),
  dependencies: z.array(Id),
  /** Data references the work reads; they become the inputs of its lineage run. */
  inputs: z.array(Id),
  /** Data references registered by its attempts (ctx.addDataReference or returned outputs). */
  outputs: z.array(Id),
  /** Work orders that depend on this one. */
  dependents: z.array(Id),
  continueOnDependencyFailure: z.boolean(),
  maxAttempts: z.number().int(),
  timeouts: z.object({ acceptMs: z.number(), leaseMs: z.number(), overallMs: z.number().nullable() }),
  state: WorkOrderState,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  /**
   * When it first became queued; the age that lifts its priority counts from here, so an order
   * declined, withdrawn or retried keeps its place in the queue.
   */
  queuedAt: Timestamp.nullable(),
  firstQueuedAt: Timestamp.nullable(),
  /** Retry backoff: not offered before this time. */
  notBefore: Timestamp.nullable(),
  /**
   * Set while the order is queued, ready, and no agent that takes work can do it or every one that
   * can declined it (see `Waiting`); cleared when such an agent (one that has not declined it)
   * registers, returns or stops draining, and when the order leaves the queue. An order backing off before a retry is marked once its backoff ends. Absent in orders
   * written before it was kept.
   */
  waiting: Waiting.nullable().optional(),
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp.nullable(),
  /** Attempts that started (were accepted); maxAttempts bounds those since its last retry (`retried`). */
  attempts: z.number().int(),
  /**
   * Set when a control client last put it back in the queue after it failed (workOrder.retry):
   * when, and how many attempts had started by then. Absent while it never was.
   */
  retried: z.object({ at: Timestamp, attempts: z.number().int() }).optional(),
  attempt: CurrentAttempt.nullable(),
  history: z.array(AttemptRecord),
  /** Agents that declined or let an offer lapse; not offered this order again. */
  declinedBy: z.array(Id),
  progress: Percentage,
  message: Text.nullable(),
  /** Progress details of the latest attempt, handed to the next attempt as its checkpoint. */
  checkpoint: z.unknown(),
  result: z.unknown(),
  error: Text.nullable(),
});
export type WorkOrder = z.infer<typeof WorkOrder>;

/** Fields of a new work order (without its workflow). */
export const WorkOrderSpec = z.strictObject({
  id: Id.optional(),
  taskType: keyName(100),
  description: Text.default(''),
  /** Capabilities an agent must all have. */
  requirements: z.array(Capability).max(50).default([]),
  /** Capabilities that raise an agent's score by their weight. */
  preferences: keyedRecord(Capability, z.number().min(0).max(100)).prefault({}),
  priority: Priority.default('normal'),
  input: boundedJson(262_144, 'input').optional(),
  dependencies: z.array(Id).max(1000).default([]),
  /**
   * Data references it reads. They must exist at creation, or, for an order with dependencies,
   * once its dependencies are done (an upstream order may produce them); otherwise it fails.
   */
  inputs: z.array(Id).max(1000).default([]),
  continueOnDependencyFailure: z.boolean().default(false),
  maxAttempts: z.number().int().min(1).max(100).default(3),
  timeouts: WorkOrderTimeouts.default(WorkOrderTimeouts.parse({})),
});

export const CreateWorkOrderInput = WorkOrderSpec.extend({ workflowId: Id });
export const CreateWorkOrdersInput = z.strictObject({ workflowId: Id, orders: z.array(WorkOrderSpec).min(1).max(1000) });

export const WorkOrderRef = z.strictObject({ workflowId: Id, workOrderId: Id });
export const CancelWorkOrderInput = WorkOrderRef.extend({ reason: Text.optional() });
export const ListWorkOrdersInput = z.strictObject({ workflowId: Id, state: WorkOrderState.optional(), ...Page });

/** An offer pushed to an agent with the `assignment` event. */
export const Assignment = z.object({
  workflowId: Id,
  workOrderId: Id,
  attemptToken: z.string(),
  attempt: z.number().int(),
  taskType: z.string(),
  description: Text,
  input: z.unknown(),
  /** The data references the order reads, as they are when it is offered. */
  inputs: z.array(z.object({ id: Id, path: z.string(), dataType: z.string(), version: z.number().int(), checksum: z.string().nullable() })),
  priority: Priority,
  requirements: z.array(z.string()),
  /** Progress details saved by the previous attempt, if any. */
  checkpoint: z.unknown(),
  acceptMs: z.number().int(),
  leaseMs: z.number().int(),
});
export type Assignment = z.infer<typeof Assignment>;

/** The agent's answer to an assignment. */
export const OfferReply = z.union([
  z.strictObject({ accept: z.literal(true) }),
  z.strictObject({ accept: z.literal(false), reason: Text.default('declined') }),
]);

/** Pushed to an agent when work it holds is cancelled or taken away. */
export const CancelNotice = z.object({ workflowId: Id, workOrderId: Id, attemptToken: z.string(), reason: Text });
export type CancelNotice = z.infer<typeof CancelNotice>;

export const ProgressInput = z.strictObject({
  ...AttemptRef,
  progress: Percentage,
  message: Text.optional(),
  /** Saved as the checkpoint handed to a later attempt. */
  details: boundedJson(65_536, 'details').optional(),
});

export const CompleteTaskInput = z.strictObject({
  ...AttemptRef,
  result: boundedJson(262_144, 'result').optional(),
  /** Data the attempt produced; registered with its provenance in the same change as the completion. */
  outputs: z.array(DataReferenceSpec).max(1000).optional(),
  /** Take this agent's next offers in the reply instead of as pushed `assignment`s. */
  next: z.boolean().optional(),
});

export const FailTaskInput = z.strictObject({
  ...AttemptRef,
  error: Text.min(1),
  /** false: do not retry (dead-letter now). */
  retryable: z.boolean().default(true),
  /** Take this agent's next offers in the reply instead of as pushed `assignment`s. */
  next: z.boolean().optional(),
});

/**
 * The reply to a completion or failure report. `next`, only when the report asked for it: the
 * offers made to this agent by that change, not pushed; each is accepted by the agent's first report on it.
 */
export const OutcomeReply = z.object({ version: z.number().int(), state: WorkOrderState, next: z.array(Assignment).optional() });
