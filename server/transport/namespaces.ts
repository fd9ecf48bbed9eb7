import type { Namespace, Socket } from 'socket.io';
import type { Contract, EventName, NamespaceName, ParsedRequestOf, ReplyOf, RequestSpec } from '../../shared/contract.ts';
import { BATCH_EVENT, BatchRequest, type Ack } from '../../shared/envelope.ts';
import { HubError } from '../../shared/errors.ts';
import { faultReason } from '../hub-fault.ts';
import type { Role, TokenGrant } from '../../shared/schemas/tokens.ts';
import type { Actor } from '../domain/machinery/actor.ts';
import type { Logger } from '../logger.ts';
import { actorOf, requireRole, type TokenRegistry } from './auth.ts';
import { sendingPage, type AddressOf } from './client-address.ts';
import { dropConnection, pauseReading, trackBacklog, unreadBytes } from './backlog.ts';
import { RateLimiter } from './rate-limit.ts';
import { refusalLevel } from './login-throttle.ts';
import { checkPayload } from './validation.ts';

/** Who is on the other end of a socket. */
export interface Session {
  grant: TokenGrant;
  actor: Actor;
  limiter: RateLimiter;
}

export type Handler<N extends NamespaceName, E extends EventName<N>> = (
  input: ParsedRequestOf<N, E>,
  session: Session,
  socket: Socket,
) => ReplyOf<N, E> | Promise<ReplyOf<N, E>>;

/** One handler per request event of namespace N; the compiler checks none is missing. */
export type Handlers<N extends NamespaceName> = { [E in EventName<N>]: Handler<N, E> };

export interface NamespaceOptions {
  tokens: TokenRegistry;
  roles: readonly Role[];
  rateLimit: { perSecond: number; burst: number };
  /** Bytes of answers a connection may leave unread; one more answer past that closes it. */
  maxUnreadBytes: number;
  log: Logger;
  /** Where a connection comes from (its peer, or the client a trusted proxy names). */
  addressOf: AddressOf;
  /** Further checks at connection time (e.g. an agent token's agentId); throw to refuse. */
  admit?: (session: Session, socket: Socket) => void;
  /** When it answers, the connection is refused with that answer as its data (a follower sends writers to the leader). */
  redirect?: () => { code: string; message: string; leader: { nodeId: string; url: string } | null } | undefined;
  onConnect?: (session: Session, socket: Socket) => void;
  onDisconnect?: (session: Session, socket: Socket, reason: string) => void;
  /** The events that read: their replies may be the state itself (see serveBatch). */
  reads?: ReadonlySet<string>;
}

/** Turns anything thrown by a handler into the failed ack envelope; unexpected errors are logged. */
export function failure(error: unknown, log: Logger, event: string): Ack<never> {
  if (error instanceof HubError) {
    // A fault of the hub's own (a damaged archived file): the operator learns of it from the log, not only the client.
    if (error.code === 'INTERNAL') log.error({ event, reason: faultReason(error) }, 'request failed: the hub could not serve it');
    return { ok: false, error: error.toJSON() };
  }
  log.error({ err: error, event }, 'handler failed');
  return { ok: false, error: { code: 'INTERNAL', message: 'internal error; nothing was changed' } };
}

type Answer = (envelope: Ack<unknown>) => void;

/** How a batch that waits on a read holds back its connection's later requests, and lets them go. */
interface BatchOrder {
  hold(): void;
  release(): void;
}

/** The refusal of a request past the connection's rate limit, naming the limit so a client knows what to pace to. */
function rateLimited(limit: { perSecond: number; burst: number }): Ack<never> {
  const message = `too many requests on this connection (rateLimit: ${limit.perSecond} a second, bursts of ${limit.burst}); slow down and retry`;
  return { ok: false, error: { code: 'RATE_LIMITED', message } };
}

/**
 * Answers a connection may hold unread, as a multiple of `maxUnreadBytes`: requests read in one
 * go before their answers were queued (a pipelined burst) may take it past the bound once.
 */
const HARD_LIMIT_FACTOR = 4;

/**
 * Keeps what a connection leaves unread bounded. A request that comes while more than `max` bytes
 * of answers wait unread stops the hub reading the connection (WebSocket) until its peer has
 * caught up, so a client that asks and never reads cannot have the hub hold every answer; over
 * long-polling, which cannot be paused, it closes the connection. An answer that would go to a
 * connection already holding HARD_LIMIT_FACTOR × `max` unread closes it. True when closed.
 */
function overflowing(socket: Socket, max: number, log: Logger, event: string, answering: boolean): boolean {
  const unread = unreadBytes(socket);
  if (unread <= max) return false;
  // Closed already: the answers still due to it (requests it sent before) go nowhere, quietly.
  if (socket.conn.readyState !== 'open') return true;
  if (answering ? unread <= HARD_LIMIT_FACTOR * max : pauseReading(socket, max / 2)) return false;
  log.warn({ namespace: socket.nsp.name, socketId: socket.id, tokenName: sessionOf(socket).grant.name, event, unreadBytes: unread }, 'connection closed: it does not read its answers');
  dropConnection(socket);
  return true;
}

/**
 * Acks a request; a socket that went away meanwhile is only logged. A module function rather
 * than a closure per request: on the hot path every closure costs an allocation (and, under
 * tsx, a defineProperty for its name).
 */
function send(answer: Answer, envelope: Ack<unknown>, log: Logger, event: string, socket: Socket, maxUnread: number): void {
  if (overflowing(socket, maxUnread, log, event, true)) return;
  try {
    answer(envelope);
  } catch (error) {
    log.warn({ err: error, event }, 'could not send ack');
  }
}

/** The session of a connected socket. */
export function sessionOf(socket: Socket): Session {
  return socket.data.session as Session;
}

/**
 * Serves namespace N: authenticates every connection, then for each incoming event (known or not)
 * checks the rate limit, parses the payload with the contract's schema, runs the handler and acks with the
 * envelope. No exception escapes; an event without an ack callback closes the socket.
 */
export function bindNamespace<N extends NamespaceName>(
  nsp: Namespace,
  events: Contract[N],
  handlers: Handlers<N>,
  options: NamespaceOptions,
): void {
  const specs = events as Record<string, RequestSpec>;
  const table = handlers as Record<string, (input: unknown, session: Session, socket: Socket) => unknown>;
  const RATE_LIMITED = rateLimited(options.rateLimit);
  nsp.use((socket, next) => {
    // Known once the token is: a refusal names the token (never the secret) when it can.
    let grant: TokenGrant | undefined;
    const address = options.addressOf(socket.handshake.address, socket.handshake.headers);
    socket.data.address = address;
    try {
      grant = options.tokens.authenticate(socket.handshake.auth?.token, address, sendingPage(socket.handshake.headers));
      requireRole(grant, options.roles);
      const session: Session = {
        grant,
        actor: actorOf(grant),
        limiter: new RateLimiter(options.rateLimit.perSecond, options.rateLimit.burst),
      };
      options.admit?.(session, socket);
      const redirect = options.redirect?.();
      if (redirect) {
        options.log.debug({ namespace: nsp.name, tokenName: grant.name, leader: redirect.leader?.url }, 'connection sent to the leader');
        return next(Object.assign(new Error(redirect.message), { data: redirect }));
      }
      socket.data.session = session;
      next();
    } catch (error) {
      const hubError = error instanceof HubError ? error : new HubError('INTERNAL', 'connection refused');
      // A fault of the hub's own is logged at error with what was thrown, as every INTERNAL answer is.
      const fault = hubError.code === 'INTERNAL';
      options.log[fault ? 'error' : refusalLevel(hubError.code)](
        { namespace: nsp.name, code: hubError.code, reason: hubError.message, role: grant?.role, tokenName: grant?.name, address, ...(fault ? { err: error } : {}) },
        'connection refused',
      );
      next(Object.assign(new Error(hubError.message), { data: hubError.toJSON() }));
    }
  });

  const max = options.maxUnreadBytes;
  nsp.on('connection', (socket) => {
    trackBacklog(socket);
    const session = sessionOf(socket);
    const { grant } = session;
    options.log.info({ namespace: nsp.name, socketId: socket.id, role: grant.role, tokenName: grant.name, agentId: grant.agentId, address: socket.data.address as string }, 'client connected');
    options.onConnect?.(session, socket);
    socket.on('disconnect', (reason) => {
      // The agent id is the one it registered as, if it did.
      options.log.info({ namespace: nsp.name, socketId: socket.id, role: grant.role, tokenName: grant.name, agentId: session.actor.agentId, reason }, 'client disconnected');
      options.onDisconnect?.(session, socket, reason);
    });
    // Requests that come while a batch waits on one of its reads: started after the batch's, in the
    // order they came, as every request of a connection is (see serveBatch).
    let held: Array<() => void> | undefined;
    const order: BatchOrder = {
      hold: () => void (held ??= []),
      release: () => {
        const queue = held ?? [];
        held = undefined;
        for (let i = 0; i < queue.length; i++) {
          // One of them a batch that waits in turn: the rest wait behind it.
          if (held) return void (held as Array<() => void>).push(...queue.slice(i));
          queue[i]!();
        }
      },
    };
    socket.onAny((event: string, ...args: unknown[]) => {
      const ack = args[args.length - 1];
      if (typeof ack !== 'function') {
        options.log.debug({ event, namespace: nsp.name }, 'event without ack: closing socket');
        socket.disconnect(true);
        return;
      }
      const answer = ack as Answer;
      if (overflowing(socket, max, options.log, event, false)) return;
      const payload = args.length > 1 ? args[0] : undefined;
      const done = (envelope: Ack<unknown>) => send(answer, envelope, options.log, event, socket, max);
      const run = () => (event === BATCH_EVENT ? serveBatch(payload, session, socket, done, order) : serve(event, payload, session, socket, done));
      if (held) held.push(run);
      else run();
    });
  });

  /** One request: its rate-limit token, its payload checked against the contract, its handler; `done` gets its envelope, once. */
  function serve(event: string, payload: unknown, session: Session, socket: Socket, done: Answer): void {
    // Before anything else: every request costs a token, an unknown or malformed one too.
    if (!session.limiter.take()) return done(RATE_LIMITED);
    const spec = Object.hasOwn(specs, event) ? specs[event] : undefined;
    if (!spec) return done({ ok: false, error: { code: 'VALIDATION', message: `unknown event ${String(event).slice(0, 100)} on ${nsp.name}` } });
    const parsed = checkPayload(`${event} payload`, spec.request, payload);
    if (!parsed.ok) return done({ ok: false, error: parsed.error.toJSON() });
    let result: unknown;
    try {
      result = table[event]!(parsed.data, session, socket);
    } catch (error) {
      return done(failure(error, options.log, event));
    }
    if (!(result instanceof Promise)) return done({ ok: true, data: result });
    result.then(
      (data) => done({ ok: true, data }),
      (error) => done(failure(error, options.log, event)),
    );
  }

  /** The requests of a batch, each served as if sent alone and in order; `done` gets their envelopes together once all are answered. */
  function serveBatch(payload: unknown, session: Session, socket: Socket, done: Answer, order: BatchOrder): void {
    const parsed = checkPayload(`${BATCH_EVENT} payload`, BatchRequest, payload);
    if (!parsed.ok) {
      // A malformed batch runs none of its requests, but costs a token as any malformed request does.
      session.limiter.take();
      return done({ ok: false, error: parsed.error.toJSON() });
    }
    const entries = parsed.data;
    const replies: Ack<unknown>[] = new Array(entries.length);
    let left = entries.length;
    // A read's reply may be the state itself: it is answered before the requests after it are served
    // (they would change what it read), and copied, since the batch is sent once all are answered.
    // Meanwhile the connection's later requests wait too (`order`), so that none overtakes them.
    let holding = false;
    const serveFrom = (first: number): void => {
      for (let i = first; i < entries.length; i++) {
        const [event, entry] = entries[i]!;
        const read = options.reads?.has(event) === true;
        let answered = false;
        let waiting = false;
        serve(event, entry, session, socket, (envelope) => {
          replies[i] = read && envelope.ok ? { ok: true, data: copyPlain(envelope.data) } : envelope;
          answered = true;
          if (--left === 0) done({ ok: true, data: replies });
          if (waiting) serveFrom(i + 1);
        });
        if (read && !answered) {
          waiting = true;
          if (!holding) order.hold();
          holding = true;
          return;
        }
      }
      if (holding) order.release();
    };
    serveFrom(0);
  }
}

/** A copy of the plain objects and arrays of a reply; anything else (a Buffer, an EncodedJson) is shared as it is. */
function copyPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyPlain);
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return value;
  const out: Record<string, unknown> = {};
  for (const key in value) out[key] = copyPlain((value as Record<string, unknown>)[key]);
  return out;
}
