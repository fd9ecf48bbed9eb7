import type { Socket } from 'socket.io-client';
import { BATCH_EVENT, MAX_BATCH, type Ack } from '../shared/envelope.ts';
import { tooBigError, type Sent } from './too-big.ts';

/** What a queued request is told when its batch was not read (too big) or not understood (an older hub): send it again, alone. */
export const SEND_ALONE = Symbol('send alone');

/** How a request learns its fate: an error (TIMEOUT, disconnect), its ack, or SEND_ALONE. */
export type Answered = (error: Error | null, reply: Ack<unknown> | typeof SEND_ALONE) => void;

interface Queued {
  event: string;
  payload: unknown;
  answered: Answered;
}

/** Requests whose timeouts differ by at most this share a batch, and its timeout. */
const WAIT_SLACK_MS = 50;

const nextTick: (run: () => void) => void = typeof process !== 'undefined' && typeof process.nextTick === 'function' ? (run) => process.nextTick(run) : queueMicrotask;

/**
 * Sends the requests made in one turn of the event loop as one message: an agent's tasks resume
 * together when the answers they awaited arrive together, and each message costs the hub (and
 * this process) far more than the request in it. A lone request goes as itself; order is kept.
 */
export class RequestBatcher {
  private queued: Queued[] = [];
  private wait = 0;
  private scheduled = false;
  /** Off once a hub did not understand a batch: it predates them. */
  private enabled: boolean;

  constructor(
    private readonly socket: Socket,
    private readonly inFlight: Set<Sent>,
    enabled: boolean,
    /** The size of this message, when the hub closed the connection at it for its size. */
    private readonly refused: (sent: Sent) => { bytes: number } | undefined,
  ) {
    this.enabled = enabled;
  }

  /** Sends `event` (now, or with the others of this turn), waiting `wait` ms for its answer; `alone`: never in a batch. */
  send(event: string, payload: unknown, wait: number, answered: Answered, alone = false): void {
    if (!this.enabled || alone) return this.emit(event, payload, wait, answered);
    if (this.queued.length > 0 && (this.queued.length === MAX_BATCH || Math.abs(wait - this.wait) > WAIT_SLACK_MS)) this.flush();
    if (this.queued.length === 0) this.wait = wait;
    this.queued.push({ event, payload, answered });
    if (!this.scheduled) {
      this.scheduled = true;
      nextTick(() => this.flush());
    }
  }

  /** Sends what is queued. */
  private flush(): void {
    this.scheduled = false;
    const queued = this.queued;
    if (queued.length === 0) return;
    this.queued = [];
    try {
      if (queued.length === 1) return this.emit(queued[0]!.event, queued[0]!.payload, this.wait, queued[0]!.answered);
      const payload = queued.map((request) => [request.event, request.payload]);
      this.emit(BATCH_EVENT, payload, this.wait, (error, reply) => {
        if (error) return queued.forEach((request) => request.answered(error, reply));
        const ack = reply as Ack<Ack<unknown>[]> | typeof SEND_ALONE;
        if (ack !== SEND_ALONE && ack.ok && Array.isArray(ack.data) && ack.data.length === queued.length) {
          return queued.forEach((request, i) => request.answered(null, ack.data[i]!));
        }
        // An older hub answers "unknown event batch", having run none of them.
        if (ack !== SEND_ALONE) this.enabled = false;
        for (const request of queued) request.answered(null, SEND_ALONE);
      });
    } catch {
      // One cannot be sent (a BigInt, a cycle): sent alone it fails its own caller, and the others go.
      for (const request of queued) request.answered(null, SEND_ALONE);
    }
  }

  /** Emits one message and tells `answered` its fate; throws, having sent nothing, when it cannot be encoded. */
  private emit(event: string, payload: unknown, wait: number, answered: Answered): void {
    const sent: Sent = { event, payload };
    this.inFlight.add(sent);
    const done = (error: Error | null, reply: Ack<unknown>) => {
      this.inFlight.delete(sent);
      const refused = error ? this.refused(sent) : undefined;
      // A message the hub closed the connection at was not read: a batch's requests go again alone, a lone one fails for what it is.
      if (refused) return event === BATCH_EVENT ? answered(null, SEND_ALONE) : answered(tooBigError(event, refused.bytes), reply);
      answered(error, reply);
    };
    try {
      this.socket.timeout(wait).emit(event, payload, done);
    } catch (error) {
      this.inFlight.delete(sent);
      throw error;
    }
  }
}
