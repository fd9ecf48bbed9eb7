import type { ReplyOf, RequestOf } from '../shared/contract.ts';
import { HubError } from '../shared/errors.ts';
import type { Assignment } from '../shared/schemas/work-order.ts';
import { ProgressStream } from './progress-stream.ts';
import { NonRetryableError, taskInput, type AgentLogger, type InputSchema, type Task, type TaskContext, type TaskHandler } from './task.ts';

/** A task type's handler and the schema its input is checked against. */
export interface Registration {
  handler: TaskHandler;
  input: InputSchema | undefined;
}

/** What an attempt needs from its agent. */
export interface AttemptHost {
  agentId: string;
  progressIntervalMs: number;
  logger: AgentLogger | null;
  /** Sends a request once the agent is registered on the current connection. */
  send<E extends 'task.progress' | 'data.register'>(event: E, payload: RequestOf<'agent', E>): Promise<ReplyOf<'agent', E>>;
}

/**
 * The promise, its rejection marked handled: progress reported without awaiting (a loop, a timer)
 * once the task ended or was taken away must not end the process. Whoever awaits it still gets it.
 */
function handled(promise: Promise<void>): Promise<void> {
  promise.catch(() => undefined);
  return promise;
}

/** The report an attempt ends with. */
export type AttemptOutcome =
  | { event: 'task.complete'; payload: RequestOf<'agent', 'task.complete'> }
  | { event: 'task.fail'; payload: RequestOf<'agent', 'task.fail'> };

/** One attempt an agent runs: its handler, the context it gets, its progress stream and its cancellation. */
export class Attempt {
  private readonly controller = new AbortController();
  private readonly progress: ProgressStream;
  private readonly ref: { workflowId: string; workOrderId: string; attemptToken: string };
  private percentage = 0;
  /** Whether anything was sent about the attempt (a report accepts an offered one), or its handler has finished. */
  reported = false;

  constructor(
    readonly assignment: Assignment,
    private readonly host: AttemptHost,
  ) {
    this.ref = { workflowId: assignment.workflowId, workOrderId: assignment.workOrderId, attemptToken: assignment.attemptToken };
    this.progress = new ProgressStream((update) => {
      this.reported = true;
      return host.send('task.progress', update);
    }, host.progressIntervalMs);
  }

  /** Stops the attempt: its signal aborts and whoever waits on its progress is told `reason`. */
  abort(reason: string): void {
    this.progress.stop(() => new HubError('STALE_ATTEMPT', reason));
    this.controller.abort(new HubError('STALE_ATTEMPT', reason));
  }

  /**
   * Checks the input, runs the handler and resolves with the report to make; undefined when the
   * attempt was aborted meanwhile (it is no longer ours to report). Whatever fails is logged.
   */
  async run({ handler, input }: Registration): Promise<AttemptOutcome | undefined> {
    const { assignment } = this;
    let inputChecked = input === undefined;
    try {
      // Only a schema makes a new task object: most handlers take the assignment as it came.
      const task: Task = inputChecked ? assignment : { ...assignment, input: await taskInput(assignment.taskType, assignment.input, input) };
      inputChecked = true;
      const outcome = await handler(task, this.context());
      this.reported = true;
      if (this.controller.signal.aborted) return undefined;
      this.progress.stop(() => new HubError('INVALID_TRANSITION', 'the task has finished'));
      const payload: RequestOf<'agent', 'task.complete'> = { ...this.ref };
      if (outcome && typeof outcome === 'object') {
        if (outcome.result !== undefined) payload.result = outcome.result;
        if (outcome.outputs?.length) payload.outputs = outcome.outputs;
      }
      return { event: 'task.complete', payload };
    } catch (error) {
      this.reported = true;
      if (this.controller.signal.aborted) return undefined;
      // A checkpoint the handler saved just before it threw goes first: the next attempt resumes from it.
      await this.progress.sendPending();
      this.progress.stop(() => new HubError('INVALID_TRANSITION', 'the task has failed'));
      const retryable = !(error instanceof NonRetryableError);
      const what = inputChecked ? `the "${assignment.taskType}" handler threw` : `the input did not match the schema of task "${assignment.taskType}"`;
      this.host.logger?.error(
        `[switchboard] agent ${this.host.agentId}: ${what} on work order ${assignment.workOrderId} of workflow ${assignment.workflowId} ` +
          `(attempt ${assignment.attempt}); the attempt fails${retryable ? '' : ' without retrying'}:`,
        error,
      );
      // The hub refuses an empty error, which would leave the order running until its lease lapsed.
      const message = (error instanceof Error ? error.message || error.name : String(error)) || 'the handler threw without a message';
      return { event: 'task.fail', payload: { ...this.ref, error: message.slice(0, 10_000), retryable } };
    }
  }

  /** What the handler gets besides the task. */
  private context(): TaskContext {
    const { assignment, ref } = this;
    return {
      workflowId: assignment.workflowId,
      workOrderId: assignment.workOrderId,
      attempt: assignment.attempt,
      checkpoint: assignment.checkpoint ?? null,
      signal: this.controller.signal,
      progress: (percentage, message, details) => {
        // Refused here, not by the hub: coalesced with a later update it would pass unnoticed, and
        // kept it would make every later checkpointNow() fail.
        if (!(typeof percentage === 'number' && percentage >= 0 && percentage <= 100)) {
          return handled(Promise.reject(new HubError('VALIDATION', `progress must be a number from 0 to 100; got ${String(percentage)}`)));
        }
        this.percentage = percentage;
        const update: RequestOf<'agent', 'task.progress'> = { ...ref, progress: percentage };
        if (message !== undefined) update.message = message;
        if (details !== undefined) update.details = details;
        return handled(this.progress.push(update));
      },
      checkpointNow: (details) => handled(this.progress.push(details === undefined ? { ...ref, progress: this.percentage } : { ...ref, progress: this.percentage, details })),
      addDataReference: async (spec) => {
        this.reported = true;
        return (await this.host.send('data.register', { ...spec, ...ref })).item;
      },
    };
  }
}
