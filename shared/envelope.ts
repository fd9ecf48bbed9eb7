import * as z from 'zod';
import { ERROR_CODES, type EndedAttempt, type ErrorCode, type ErrorIssue } from './errors.ts';

/** Every request is acknowledged with exactly one of these. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: { code: ErrorCode; message: string; issues?: ErrorIssue[]; attempts?: EndedAttempt[] } };

/** The failed half of the ack envelope, as a schema for the published JSON Schema. */
export const ErrorEnvelope = z.object({
  ok: z.literal(false),
  error: z.object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    issues: z.array(z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })).optional(),
    attempts: z
      .array(z.object({ number: z.number().int(), outcome: z.string() }))
      .optional()
      .describe("STALE_ATTEMPT on an agent's report: the reporting agent's ended attempts of the work order, with how each ended"),
  }),
});

/** The ack envelope around a reply schema. */
export function envelopeOf<T extends z.ZodType>(data: T) {
  return z.union([z.object({ ok: z.literal(true), data }), ErrorEnvelope]);
}

/** The event that carries several requests of a namespace in one message (PROTOCOL.md, "Batches"). */
export const BATCH_EVENT = 'batch';
/** The most requests one batch may carry. */
export const MAX_BATCH = 100;
/** A batch: `[event, payload]` pairs, each a request of the namespace, served in order as if sent alone. */
export const BatchRequest = z.array(z.tuple([z.string(), z.unknown()])).min(1).max(MAX_BATCH);
/** The `data` of a batch's ack: one ack envelope per request, in the batch's order. */
export const BatchReply = z.array(envelopeOf(z.unknown()));
