import * as z from 'zod';

/** Replies bigger than this many bytes of JSON are sent as a transfer instead of in the ack. */
export const INLINE_REPLY_BYTES = 1 << 20;

/**
 * A reply body too big for one message (a snapshot or report of a big workflow): it waits on the
 * hub, for the socket that asked, in `parts` binary parts of at most 1 MB, read with
 * `transfer.read`. Its text is UTF-8; a JSON body parses once all parts are joined.
 */
export const Transfer = z.object({
  id: z.string(),
  parts: z.number().int().min(1),
  bytes: z.number().int().nonnegative(),
});
export type Transfer = z.infer<typeof Transfer>;

export const ReadTransferInput = z.strictObject({ id: z.string().min(1).max(64), part: z.number().int().nonnegative() });

/** One part of a transfer: raw bytes, sent as a socket.io binary attachment. */
export const TransferPart = z.object({
  data: z.custom<Uint8Array | ArrayBuffer>((value) => value instanceof Uint8Array || value instanceof ArrayBuffer, 'binary data').meta({
    description: 'Binary attachment: bytes of the body (a Buffer in Node, an ArrayBuffer in browsers).',
  }),
});
