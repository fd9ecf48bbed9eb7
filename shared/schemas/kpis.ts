import * as z from 'zod';
import { Id, Name, Text, Timestamp } from './common.ts';

/** Whether a KPI is better when higher (accuracy) or lower (latency). */
export const KpiDirection = z.enum(['higher', 'lower']);

/** One recorded value of a KPI. */
export const KpiSample = z.object({ value: z.number(), at: Timestamp });
export type KpiSample = z.infer<typeof KpiSample>;

/** A measurable indicator with a numeric target and its recorded history (newest last). */
export const Kpi = z.object({
  id: Id,
  name: Name,
  description: Text,
  target: z.number(),
  unit: z.string().max(100),
  direction: KpiDirection,
  current: z.number().nullable(),
  /** The most recent samples, oldest first, bounded by `kpiHistoryLimit`. */
  history: z.array(KpiSample),
  /** How many values were ever recorded, including those dropped from `history`. */
  samples: z.number().int().nonnegative(),
  met: z.boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type Kpi = z.infer<typeof Kpi>;

export const AddKpiInput = z.strictObject({
  workflowId: Id,
  id: Id.optional(),
  name: Name,
  description: Text.default(''),
  target: z.number().finite(),
  unit: z.string().max(100).default(''),
  direction: KpiDirection.default('higher'),
});

export const RecordKpiInput = z.strictObject({ workflowId: Id, kpiId: Id, value: z.number().finite() });
