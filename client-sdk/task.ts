import type { z } from 'zod';
import type { DataReference, DataReferenceSpec } from '../shared/schemas/data.ts';
import type { Assignment } from '../shared/schemas/work-order.ts';

/*
 * What a task handler deals with: the context it is given, what it may return or throw, and
 * the report an agent makes of each outcome. The agent client (agent.ts) runs handlers.
 */

/** Throw this from a task handler to fail the work order without retrying it. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/** What a task handler gets besides the assignment. */
export interface TaskContext {
  workflowId: string;
  workOrderId: string;
  /** 1 for the first attempt, 2 for the first retry, … */
  attempt: number;
  /** Details saved by the previous attempt's progress, or null. */
  checkpoint: unknown;
  /** Aborted when the hub cancels or reassigns this attempt; stop work when it fires. */
  signal: AbortSignal;
  /**
   * Reports progress (0..100). Calls are coalesced: a hot loop costs the hub at most one update
   * per `progressIntervalMs`. `details` become the checkpoint handed to a later attempt.
   */
  progress(percentage: number, message?: string, details?: unknown): Promise<void>;
  /** Saves a checkpoint without changing the percentage. */
  checkpointNow(details: unknown): Promise<void>;
  /** Registers data this attempt produced; the hub records this agent, work order and attempt as its provenance. */
  addDataReference(ref: DataSpec): Promise<DataReference>;
}

/** A data reference to register: path or URI, description, dataType, tags, metadata, … */
export type DataSpec = z.input<typeof DataReferenceSpec>;

/**
 * What a handler may return: the result stored on the work order, and data it produced
 * (registered with the completion; they become the outputs of the order's lineage run).
 */
export type TaskOutcome = { result?: unknown; outputs?: DataSpec[] } | void;

/** Runs one assignment; throw to fail it (NonRetryableError: without retrying). */
export type TaskHandler = (task: Assignment, ctx: TaskContext) => Promise<TaskOutcome> | TaskOutcome;

/** What happened to a completion or failure the agent reported. */
export interface TaskReport {
  workflowId: string;
  workOrderId: string;
  attemptToken: string;
  outcome: 'completed' | 'failed';
  /** Whether the hub accepted the report; a refused one carries the hub's error code. */
  accepted: boolean;
  code?: string;
}
