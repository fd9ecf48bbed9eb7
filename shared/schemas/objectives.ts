import * as z from 'zod';
import { Id, Name, Percentage, Priority, Text, Timestamp } from './common.ts';

/** Where an objective stands. */
export const ObjectiveStatus = z.enum(['pending', 'in_progress', 'completed', 'failed']);
export type ObjectiveStatus = z.infer<typeof ObjectiveStatus>;

/** A goal of the workflow with a free-text target ("95% accuracy", "p < 0.05"). */
export const Objective = z.object({
  id: Id,
  name: Name,
  description: Text,
  target: Text,
  priority: Priority,
  status: ObjectiveStatus,
  progress: Percentage,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Objective = z.infer<typeof Objective>;

export const AddObjectiveInput = z.strictObject({
  workflowId: Id,
  id: Id.optional(),
  name: Name,
  description: Text.default(''),
  target: Text.default(''),
  priority: Priority.default('normal'),
});

/** Changes to an objective; only the fields given change. */
export const UpdateObjectiveInput = z
  .strictObject({
    workflowId: Id,
    objectiveId: Id,
    description: Text.optional(),
    target: Text.optional(),
    priority: Priority.optional(),
    status: ObjectiveStatus.optional(),
    progress: Percentage.optional(),
  })
  .refine((input) => Object.keys(input).length > 2, { message: 'give at least one field to change' })
  // The JSON Schema's form of that rule: the two ids and at least one field.
  .meta({ minProperties: 3 });
