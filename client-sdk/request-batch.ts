import type { Socket } from 'socket.io-client';
import { BATCH_EVENT, MAX_BATCH, type Ack } from '../shared/envelope.ts';
import { HubError } from '../shared/errors.ts';
import { tooBigError, type Sent } from './too-big.ts';

/** What a queued request is told when its batch was not read (too big) or could not be encoded: send it again, alone (where a bad one fails for what it is). */
export const SEND_ALONE = Symbol('send alone');

/** How a request learns its fate: an error (TIMEOUT, disconnect), its ack, or SEND_ALONE. */
export type Answered = (error: Error | null, reply: Ack<unknown> | typeof SEND_ALONE) => void;

interface Queued {
  event: string;
  payload: unknown;
  answered: Answered;
  /** When its own wait ends (performance.now()), should it be sent again alone. */
  deadline: number;
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
  private enabled = true;

  constructor(
    private readonly socket: Socket,
    private readonly inFlight: Set<Sent>,
    /** Whether a request may share a message: answered as quickly as the others, it holds none of them back. */
    private readonly batchable: (event: string, payload: unknown) => boolean,
    /** The size of this message, when the hub closed the connection at it for its size. */
    private readonly refused: (sent: Sent) => { bytes: number } | undefined,
  ) {}

  /** Sends `event` (now, or with the others of this turn), waiting `wait` ms for its answer; `alone`: never in a batch. */
  send(event: string, payload: unknown, wait: number, answered: Answered, alone = false): void {
    if (!this.enabled || alone || !this.batchable(event, payload)) {
      // Those queued before it go first.
      if (this.queued.length > 0) this.flush();
      return this.emit(event, payload, wait, answered);
    }
    if (this.queued.length > 0 && (this.queued.length === MAX_BATCH || Math.abs(wait - this.wait) > WAIT_SLACK_MS)) this.flush();
    if (this.queued.length === 0) this.wait = wait;
    this.queued.push({ event, payload, answered, deadline: performance.now() + wait });
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
    // The connection dropped or was closed (close(), a failover) in the turn these were queued: none went out.
    // Emitted now, they would wait in socket.io's buffer (for the whole timeout after close()) and go out first
    // on the next connection, ahead of an agent's registration. They fail as a request the drop caught does.
    if (!this.socket.connected) {
      for (const request of queued) request.answered(new HubError('DISCONNECTED', `${request.event} was not sent: the connection to the hub dropped`), SEND_ALONE);
      return;
    }
    if (queued.length === 1) {
      const [request] = queued as [Queued];
      try {
        this.emit(request.event, request.payload, this.wait, request.answered);
      } catch {
        // Sent alone again by its caller, it fails there.
        request.answered(null, SEND_ALONE);
      }
      return;
    }
    const payload = queued.map((request) => [request.event, request.payload]);
    try {
      this.emit(BATCH_EVENT, payload, this.wait, (error, reply) => {
        if (error) return queued.forEach((request) => request.answered(error, reply));
        const ack = reply as Ack<Ack<unknown>[]> | typeof SEND_ALONE;
        if (ack !== SEND_ALONE && ack.ok && Array.isArray(ack.data) && ack.data.length === queued.length) {
          return queued.forEach((request, i) => request.answered(null, ack.data[i]!));
        }
        // Not read (too big): the connection is down; each goes again alone once it is back.
        if (ack === SEND_ALONE) return queued.forEach((request) => request.answered(null, SEND_ALONE));
        // An older hub answers "unknown event batch", having run none of them.
        this.enabled = false;
        this.emitEach(queued);
      });
    } catch {
      // One cannot be sent (a BigInt, a cycle): the others go alone, and the bad one fails its own caller.
      this.emitEach(queued);
    }
  }

  /**
   * Sends each request alone, now and in order: told SEND_ALONE, they would go out in the
   * continuations of their callers, after any request queued meanwhile and flushed on the next
   * tick (before promise continuations when the flush was forced from a timer or a socket event).
   * One that cannot be encoded is told SEND_ALONE: its caller sends it again, and it fails there.
   */
  private emitEach(queued: Queued[]): void {
    for (const request of queued) {
      if (!this.socket.connected) {
        request.answered(null, SEND_ALONE);
        continue;
      }
      try {
        this.emit(request.event, request.payload, Math.max(1, request.deadline - performance.now()), request.answered);
      } catch {
        request.answered(null, SEND_ALONE);
      }
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
