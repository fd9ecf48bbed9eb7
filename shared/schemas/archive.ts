import * as z from 'zod';
import { Timestamp } from './common.ts';
import { WorkflowStatus } from './workflow.ts';

/** Deletes archived workflows that ended more than `olderThanMs` ago. */
export const PruneArchiveInput = z.strictObject({ olderThanMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

/** The archived workflows a prune deleted. */
export const PruneArchiveReply = z.object({
  removed: z.array(z.object({ workflowId: z.string(), status: WorkflowStatus, endedAt: Timestamp.nullable() })),
});
