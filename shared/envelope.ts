import * as z from 'zod';
import { ERROR_CODES, type ErrorCode, type ErrorIssue } from './errors.ts';

/** Every request is acknowledged with exactly one of these. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: { code: ErrorCode; message: string; issues?: ErrorIssue[] } };

/** The failed half of the ack envelope, as a schema for the published JSON Schema. */
export const ErrorEnvelope = z.object({
  ok: z.literal(false),
  error: z.object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    issues: z.array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })).optional(),
  }),
});

/** The ack envelope around a reply schema. */
export function envelopeOf<T extends z.ZodType>(data: T) {
  return z.union([z.object({ ok: z.literal(true), data }), ErrorEnvelope]);
}
