import * as z from 'zod';
import { Id, Name, Text, Timestamp, boundedJson } from './common.ts';

/** Where an execution step is in its life. */
export const StepStatus = z.enum(['pending', 'running', 'completed', 'failed']);
export type StepStatus = z.infer<typeof StepStatus>;

/** One execution step of a workflow, optionally tied to the agent and work order doing it. */
export const Step = z.object({
  id: Id,
  name: Name,
  description: Text,
  status: StepStatus,
  agentId: Id.nullable(),
  workOrderId: Id.nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  endedAt: Timestamp.nullable(),
  durationMs: z.number().int().nonnegative().nullable(),
  error: Text.nullable(),
  result: z.unknown().optional(),
});
export type Step = z.infer<typeof Step>;

export const AddStepInput = z.strictObject({
  workflowId: Id,
  id: Id.optional(),
  name: Name,
  description: Text.default(''),
  agentId: Id.optional(),
  workOrderId: Id.optional(),
  /** Start the step right away instead of leaving it pending. */
  start: z.boolean().default(false),
});

export const StepRef = z.strictObject({ workflowId: Id, stepId: Id });

export const CompleteStepInput = z.strictObject({
  workflowId: Id,
  stepId: Id,
  result: boundedJson(65_536, 'result').optional(),
});

export const FailStepInput = z.strictObject({ workflowId: Id, stepId: Id, error: Text.min(1) });
