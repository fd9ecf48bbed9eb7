import * as z from 'zod';
import { Id, keyedRecord } from './common.ts';
import { Transfer } from './transfer.ts';
import { ViewName, ViewSpec } from './views.ts';

/** A document a monitor can follow: a workflow id, or `@agents` for the agent pool. */
export const DocName = z.union([Id, z.literal('@agents')]);

/** What a subscription follows and its messages name: a document, or a view of a workflow by its name. */
export const FollowedName = z.union([DocName, ViewName]);

/** RFC 6902 operations as they travel (the subset the hub emits). */
export const PatchOperation = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), path: z.string(), value: z.unknown() }),
  z.object({ op: z.literal('replace'), path: z.string(), value: z.unknown() }),
  z.object({ op: z.literal('remove'), path: z.string() }),
]);

/** Changes to one document taking it from version `from` to version `to`. */
export const PatchMessage = z.object({ doc: FollowedName, from: z.number().int(), to: z.number().int(), ops: z.array(PatchOperation) });
export type PatchMessage = z.infer<typeof PatchMessage>;

/**
 * Which run of the hub versions belong to. A hub that restarts after a crash starts a new epoch:
 * versions a subscriber saw may never have reached disk, so it resumes from a snapshot, not from
 * patches. One stopped cleanly keeps its epoch (every version sent was on disk).
 */
export const Epoch = z.string().min(1).max(64);

/** The answer to a subscription: the whole document, or the patches since the version the client holds. */
export const Subscription = z.discriminatedUnion('mode', [
  z.object({
    doc: FollowedName,
    epoch: Epoch,
    mode: z.literal('snapshot'),
    version: z.number().int(),
    /** The document; absent when it is over 1 MB of JSON and sent as `transfer` instead. */
    state: z.unknown().optional(),
    transfer: Transfer.optional(),
  }),
  z.object({ doc: FollowedName, epoch: Epoch, mode: z.literal('patches'), from: z.number().int(), to: z.number().int(), ops: z.array(PatchOperation) }),
]);
export type Subscription = z.infer<typeof Subscription>;

export const SubscribeInput = z.strictObject({
  doc: DocName,
  /** Follow this view of the workflow `doc` instead of the whole document. */
  view: ViewSpec.optional(),
  /** The version the client's mirror holds, to resume with the missed patches only. */
  version: z.number().int().nonnegative().optional(),
  /** The epoch that version belongs to; another epoch (or none) gets a snapshot. */
  epoch: Epoch.optional(),
});

export const SubscribeAllInput = z.strictObject({
  /** Versions the client holds, per document, to resume. */
  versions: keyedRecord(DocName, z.number().int().nonnegative()).prefault({}),
  /** The epoch those versions belong to. */
  epoch: Epoch.optional(),
});

/** Sent when a subscriber must fetch a fresh snapshot (it fell behind, or the hub rolled back). */
export const ResyncNotice = z.object({
  doc: FollowedName,
  reason: z.string(),
  /** Set when the workflow was deleted from the archive: a follower of everything that holds no mirror of it has nothing to catch up. */
  deleted: z.literal(true).optional(),
});
export type ResyncNotice = z.infer<typeof ResyncNotice>;
