import type * as z from 'zod';
import type { DataReference, DataReferenceSpec } from '../shared/schemas/data.ts';
import type { Assignment } from '../shared/schemas/work-order.ts';

/*
 * What a task handler deals with: the task and context it is given, what it may return or throw,
 * and the report an agent makes of each outcome. The agent client (agent.ts) runs handlers.
 */

/** Throw this from a task handler to fail the work order without retrying it. */
export class NonRetryableError extends Error {
  override readonly name = 'NonRetryableError';
}

/** The assignment a handler runs, with its `input` typed (checked first when onTask was given a schema). */
export type Task<Input = unknown> = Omit<Assignment, 'input'> & { input: Input };

/** What a task handler gets besides the task. */
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
   * Reports progress (0..100). Sent at once when no update of this task is in flight; calls made
   * meanwhile are coalesced into the newest (keeping the message and details of earlier ones it
   * leaves out), so a hot loop costs one update per round trip.
   * `details` become the checkpoint handed to a later attempt. Rejects once the task has ended or
   * was taken away; a call not awaited then is no unhandled rejection.
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
export type TaskOutcome<Result = unknown> = { result?: Result; outputs?: DataSpec[] } | void;

/** Runs one task; throw to fail it (NonRetryableError: without retrying). */
export type TaskHandler<Input = unknown, Result = unknown> = (task: Task<Input>, ctx: TaskContext) => Promise<TaskOutcome<Result>> | TaskOutcome<Result>;

/**
 * A schema of the Standard Schema interface (standardschema.dev), as zod (3.24 and later, any 4),
 * valibot and arktype make them: the SDK calls only its `validate`, so the schema library and its
 * version are the application's, not the one this package depends on.
 */
export interface InputSchema<Output = unknown> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => InputSchemaResult<Output> | Promise<InputSchemaResult<Output>>;
    readonly types?: { readonly input: unknown; readonly output: Output } | undefined;
  };
}

/** What an InputSchema's `validate` answers: the parsed value, or the issues. */
type InputSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined }> };

/** The value an InputSchema parses to: what a typed handler gets as `task.input`. */
export type InputOf<Schema extends InputSchema> = NonNullable<Schema['~standard']['types']>['output'];

/** How a task type is handled, besides its handler. */
export interface TaskOptions<Schema extends InputSchema = InputSchema> {
  /**
   * Checked against each task's input before the handler runs; the handler gets the parsed value.
   * An input that does not match fails the attempt without retrying, with the issues in its error.
   */
  input: Schema;
}

/** Where an agent reports what its handlers throw, and warnings (`warn`, optional): `console` by default; `null` for nowhere. */
export interface AgentLogger {
  error(message: string, error: unknown): void;
  warn?(message: string): void;
}

/**
 * The author's logger, called so that a failure of its own (a method passed without its object,
 * `{ error: log.error }`) never stops what the SDK was doing: reporting a failed attempt, say.
 */
export function guardedLogger(logger: AgentLogger | null): AgentLogger | null {
  if (!logger) return null;
  const guard =
    <A extends unknown[]>(method: (...args: A) => void) =>
    (...args: A) => {
      try {
        method.apply(logger, args);
      } catch (error) {
        console.error('[switchboard] the agent logger threw while logging:', error, '; the message was:', ...args);
      }
    };
  const warn = logger.warn;
  return { error: guard(logger.error), ...(warn ? { warn: guard(warn) } : {}) };
}

/** What happened to a completion or failure the agent reported. */
export interface TaskReport {
  workflowId: string;
  workOrderId: string;
  attemptToken: string;
  outcome: 'completed' | 'failed';
  /** Whether the hub accepted the report (a repeat refused as STALE_ATTEMPT after a try whose answer was lost counts when the refusal shows that try landed); a refused one carries the hub's error code. */
  accepted: boolean;
  code?: string;
}

/**
 * The input a handler gets: the task's own, or parsed by the schema. A mismatch throws a
 * NonRetryableError naming each issue, which becomes the work order's error.
 */
export async function taskInput(taskType: string, input: unknown, schema: InputSchema | undefined): Promise<unknown> {
  if (!schema) return input;
  // Awaited: a schema may check asynchronously (refine(async ...)), and then validates to a promise.
  const parsed = await schema['~standard'].validate(input);
  if (!parsed.issues) return parsed.value;
  const key = (segment: PropertyKey | { readonly key: PropertyKey }) => String(typeof segment === 'object' ? segment.key : segment);
  const issues = parsed.issues.map((issue) => `${issue.path?.length ? issue.path.map(key).join('.') : '(input)'}: ${issue.message}`);
  throw new NonRetryableError(`the input does not match the schema of task "${taskType}": ${issues.join('; ')}`);
}
