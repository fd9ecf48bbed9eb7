import { HubError } from '../shared/errors.ts';

/** A request on the wire, kept until answered so that a close for a message too big can name it. */
export interface Sent {
  event: string;
  payload: unknown;
}

/** WebSocket close code 1009: the hub closed the connection at a message over its maxHttpBufferSize. */
const MESSAGE_TOO_BIG = 1009;

/** Whether socket.io's disconnect details say the hub closed the WebSocket for a message too big (Node's ws and browsers alike). */
export function closedForSize(details: unknown): boolean {
  const context = (details as { context?: { code?: unknown } } | undefined)?.context;
  return context?.code === MESSAGE_TOO_BIG;
}

/** The approximate size of a payload's JSON in bytes; 0 if it has none. */
function jsonBytes(payload: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(payload) ?? '').byteLength;
  } catch {
    return 0;
  }
}

/** The biggest of the requests in flight (the one the hub refused, as it read no further) and its size. */
export function biggest(sent: Iterable<Sent>): { sent: Sent; bytes: number } | undefined {
  let found: { sent: Sent; bytes: number } | undefined;
  for (const request of sent) {
    const bytes = jsonBytes(request.payload);
    if (!found || bytes > found.bytes) found = { sent: request, bytes };
  }
  return found;
}

/** The error of a request whose message the hub would not read: nothing was done, and sending it again cannot help. */
export function tooBigError(event: string, bytes: number): HubError {
  return new HubError(
    'VALIDATION',
    `${event} was not read by the hub: its message (about ${bytes} bytes) is larger than the hub's maxHttpBufferSize (1 MiB by default), so the hub closed the connection without applying it. Send less in one request.`,
  );
}
