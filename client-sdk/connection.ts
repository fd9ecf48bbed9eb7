import { io, type Socket } from 'socket.io-client';
import type { EventName, NamespaceName, ReplyOf, RequestOf } from '../shared/contract.ts';
import type { Ack } from '../shared/envelope.ts';
import { HubError, isErrorCode } from '../shared/errors.ts';
import { batchSocketWrites } from './batched-writes.ts';
import { Failover } from './failover.ts';
import { hubUrls } from './hub-url.ts';
import { checkedTimeout, timerMs } from './timeouts.ts';
import { whyNotJson } from './json-fit.ts';
import { RequestBatcher, SEND_ALONE, type Answered } from './request-batch.ts';
import { biggest, closedForSize, type Sent } from './too-big.ts';

/** How to reach a hub. */
export interface ConnectOptions {
  /**
   * The hub's base URL, e.g. http://127.0.0.1:4700 (no path: the hub serves its clients at the
   * root); or the URLs of a cluster's nodes, tried in turn until one serves this client.
   */
  url: string | string[];
  token: string;
  /** How long a request waits for its ack before failing with TIMEOUT (default 10 s; Infinity: no limit). */
  requestTimeoutMs?: number;
  /** How long the first connection may take before failing with DISCONNECTED (default 10 s; Infinity: no limit). */
  connectTimeoutMs?: number;
}

/** Per-request options, accepted as the last argument of every request method. */
export interface RequestOptions {
  /** Aborts the request: it rejects with an AbortError (a request already sent may still take effect). */
  signal?: AbortSignal;
  /** How long to wait for the answer (default: the client's `requestTimeoutMs`; Infinity: no limit). */
  timeoutMs?: number;
}

/** Failures after which a request may or may not have taken effect. */
const MAY_HAVE_LANDED: ReadonlySet<string> = new Set(['DISCONNECTED', 'TIMEOUT', 'UNAVAILABLE']);

/** Whether a request that failed with `code` may have taken effect all the same. */
export function mayHaveLanded(code: string): boolean {
  return MAY_HAVE_LANDED.has(code);
}
/** Of those, the ones after which a create with the client's id is sent again at once (UNAVAILABLE is the caller's to retry). */
const RESEND = new Set(['DISCONNECTED', 'TIMEOUT']);
/** Creates of unknown outcome remembered per connection. */
const UNSURE_KEPT = 10_000;

/**
 * Control requests that only change state through the hub's one writer: answered with the commit
 * that holds them, as quickly as the others of their turn. Reads (a big workflow is serialised a
 * slice at a time) and requests that touch files (data.register, registerMany, update and validate
 * hash the files they name first) go alone, so that they hold back no other answer.
 */
const QUICK_CONTROL: ReadonlySet<string> = new Set([
  'workflow.create', 'workflow.start', 'workflow.complete', 'workflow.fail', 'workflow.cancel', 'workflow.pause', 'workflow.resume',
  'workflow.progress', 'step.add', 'step.start', 'step.complete', 'step.fail', 'objective.add', 'objective.update', 'kpi.add', 'kpi.record',
  'workOrder.create', 'workOrder.createMany', 'workOrder.cancel', 'workOrder.retry', 'agent.update',
  'lineage.link',
]);

/** Which requests of each namespace go with the others of their turn in one message (request-batch.ts). */
const BATCHABLE: Record<NamespaceName, (event: string, payload: unknown) => boolean> = {
  // An agent's are quick writes, in bursts; but the hub hashes the local files a data registration
  // or a completion's outputs name before it answers.
  agent: (event, payload) => event !== 'data.register' && !(payload as { outputs?: unknown[] } | undefined)?.outputs?.length,
  control: (event) => QUICK_CONTROL.has(event),
  monitor: () => false,
};

/** The longest pause between attempts to reach a node of a cluster (a list of URLs). */
const CLUSTER_RETRY_MAX_MS = 500;
/** How long a connection attempt to a node of a cluster may take before the next node is tried. */
const CLUSTER_CONNECT_TIMEOUT_MS = 5000;

/** The error an aborted request rejects with; `cause` is the signal's reason. */
function abortError(event: string, signal: AbortSignal, sent: boolean): Error {
  const message = sent ? `${event} was aborted before the hub answered; it may still take effect` : `${event} was aborted before it was sent`;
  return Object.assign(new Error(message, { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

/**
 * A socket to one namespace of the hub that sends typed requests and turns their ack
 * envelopes back into values or thrown HubErrors. Reconnects on its own, to the leader or the
 * next node of a cluster when its node refuses it or goes away.
 */
export class Connection<N extends NamespaceName> {
  /** Keys of creates whose outcome is unknown: a CONFLICT for one of them later is its success. */
  private readonly unsure = new Set<string>();
  /** Requests waiting for the reconnection: close() fails them at once, as nothing will come up again. */
  private readonly waitingForConnection = new Set<() => void>();
  /** Requests sent and not answered yet. */
  private readonly inFlight = new Set<Sent>();
  /** The request whose message the hub closed the connection at (too big), until the next disconnect. */
  private refused: { sent: Sent; bytes: number } | undefined;
  private readonly batcher: RequestBatcher;

  private constructor(
    readonly socket: Socket,
    private readonly failover: Failover,
    private readonly timeoutMs: number,
    batchable: (event: string, payload: unknown) => boolean,
  ) {
    // Told before socket.io fails the pending acks: the request too big fails for what it is, not as
    // DISCONNECTED, which its callers (a create sent again, an agent's report) would retry for ever.
    socket.on('disconnect', (_reason, details) => {
      this.refused = closedForSize(details) ? biggest(this.inFlight) : undefined;
    });
    this.batcher = new RequestBatcher(socket, this.inFlight, batchable, (sent) => (this.refused?.sent === sent ? this.refused : undefined));
  }

  /** The URL of the hub node connected to (or, while the connection is down, being tried). */
  get url(): string {
    return this.failover.url;
  }

  /**
   * Connects to `namespace`. A follower's refusal (NOT_LEADER) is followed to the leader it names;
   * with several URLs, a node that cannot be reached gives way to the next. Rejects at a refused
   * token (UNAUTHENTICATED, FORBIDDEN), once every URL failed to answer, or after
   * `connectTimeoutMs` (DISCONNECTED), each saying what to do; a bad URL is VALIDATION.
   */
  static async open<N extends NamespaceName>(namespace: N, options: ConnectOptions, auth: Record<string, unknown> = {}): Promise<Connection<N>> {
    const urls = hubUrls(options.url);
    const timeoutMs = checkedTimeout('connectTimeoutMs', options.connectTimeoutMs, 10_000);
    const requestTimeoutMs = checkedTimeout('requestTimeoutMs', options.requestTimeoutMs, 10_000);
    const socket = io(`${urls[0]}/${namespace}`, {
      auth: { ...auth, token: options.token },
      transports: ['websocket'],
      // Each client gets its own connection, so closing or losing one never takes another down.
      forceNew: true,
      reconnectionDelay: 200,
      // A cluster's new leader serves about a lease after the old one died: retries stay short so that clients find it soon after.
      reconnectionDelayMax: urls.length > 1 ? CLUSTER_RETRY_MAX_MS : 2000,
      // A node that takes the TCP connection but never answers (frozen) is given up sooner than socket.io's 20 s.
      ...(urls.length > 1 ? { timeout: CLUSTER_CONNECT_TIMEOUT_MS } : {}),
    });
    batchSocketWrites(socket);
    const failover = new Failover(socket, urls, namespace, urls.length > 1 ? CLUSTER_RETRY_MAX_MS : 2000);
    return new Promise((resolve, reject) => {
      /** Every URL that failed, in order, and why each node of the list that could not be reached failed. */
      const tried = new Set<string>();
      const unreachable = new Map<string, HubError>();
      const settle = () => {
        clearTimeout(timer);
        stopWatching();
        socket.off('connect', onConnect);
      };
      const giveUp = (error: HubError) => {
        settle();
        failover.stop();
        socket.disconnect();
        reject(error);
      };
      const timer = setTimeout(() => {
        const last = failover.lastError;
        const where = urls.length === 1 ? `the hub at ${urls[0]}` : `any of the hub nodes ${urls.join(', ')}`;
        if (!last) return giveUp(new HubError('DISCONNECTED', `no answer from ${where} within ${timeoutMs} ms. Is the hub running and reachable?`));
        giveUp(new HubError('DISCONNECTED', `no connection to ${where} within ${timeoutMs} ms; tried ${[...tried].join(', ')}, and the last attempt failed: ${last.message}`));
      }, timerMs(timeoutMs));
      // The first connection fails fast when retrying cannot help now: a refused token, or (with
      // one URL) a refused port; whoever connects wants to know. A follower's refusal is followed.
      const stopWatching = failover.onFailure(({ url, error, retrying }) => {
        tried.add(url);
        if (!retrying) return giveUp(error);
        if (error.code === 'NOT_LEADER' || !urls.includes(url)) return;
        unreachable.set(url, error);
        if (unreachable.size < urls.length) return;
        if (urls.length === 1) return giveUp(error);
        giveUp(new HubError('DISCONNECTED', `cannot reach any of the ${urls.length} hub nodes: ${[...unreachable.values()].map((e) => e.message).join(' ')}`));
      });
      const onConnect = () => {
        settle();
        resolve(new Connection<N>(socket, failover, requestTimeoutMs, BATCHABLE[namespace]));
      };
      socket.once('connect', onConnect);
    });
  }

  /**
   * Sends a request and resolves with its reply, or throws the HubError the hub answered with.
   * While the connection is down the request waits (unsent) for the reconnection, up to its
   * timeout; then, or when the connection drops before the answer, it fails with DISCONNECTED.
   */
  async request<E extends EventName<N>>(event: E, payload: RequestOf<N, E>, options: RequestOptions = {}): Promise<ReplyOf<N, E>> {
    const { signal } = options;
    const timeoutMs = checkedTimeout('timeoutMs', options.timeoutMs, this.timeoutMs);
    // On performance.now(): a step of the wall clock must not end the wait, or stretch it.
    const deadline = performance.now() + timeoutMs;
    if (signal?.aborted) throw abortError(event, signal, false);
    // Refused here, sent nowhere: as the Python SDK's json refuses NaN, and as JSON.stringify refuses a BigInt, but naming where.
    const unfit = whyNotJson(payload);
    if (unfit) throw new TypeError(`${event} cannot be sent: ${unfit}`);
    let ack: Ack<ReplyOf<N, E>> | typeof SEND_ALONE;
    let alone = false;
    do {
      if (alone) await this.readyToResend(event, deadline);
      if (!this.socket.connected) await this.connected(event, Math.max(0, deadline - performance.now()), signal);
      ack = await new Promise<Ack<ReplyOf<N, E>> | typeof SEND_ALONE>((resolve, reject) => {
        const onAbort = () => reject(abortError(event, signal!, true));
        signal?.addEventListener('abort', onAbort, { once: true });
        const sentAt = performance.now();
        const wait = timerMs(Math.max(1, deadline - sentAt));
        const answered: Answered = (error, reply) => {
          signal?.removeEventListener('abort', onAbort);
          if (!error) return resolve(reply as Ack<ReplyOf<N, E>> | typeof SEND_ALONE);
          // One the batcher named: too big for the hub to read, or not sent at all.
          if (error instanceof HubError) return reject(error);
          // socket.io fails the pending acks of a connection that dropped at once, before their timeout.
          if (!this.socket.connected) {
            return reject(new HubError('DISCONNECTED', `the connection to the hub at ${this.url} dropped before ${event} was answered; it may or may not have taken effect`));
          }
          const silent = this.url;
          // A cluster's node that stops answering (frozen, or cut off) may keep its socket open for a while: move on.
          // A request given less than the client's requestTimeoutMs says nothing of the node: it must not drop the connection.
          if (timeoutMs >= this.timeoutMs) this.failover.abandon(sentAt);
          reject(new HubError('TIMEOUT', `${event} got no answer from the hub at ${silent} within ${timeoutMs} ms`));
        };
        try {
          this.batcher.send(event, payload, wait, answered, alone);
        } catch (error) {
          // Not sendable at all (a BigInt, a cycle): nothing went out.
          signal?.removeEventListener('abort', onAbort);
          throw error;
        }
      });
      // Its batch was not read (too big: the connection dropped at it) or could not be encoded: it goes again, alone.
      alone = true;
    } while (ack === SEND_ALONE);
    if (ack.ok) return ack.data;
    throw new HubError(isErrorCode(ack.error.code) ? ack.error.code : 'INTERNAL', ack.error.message, ack.error.issues, ack.error.attempts);
  }

  /**
   * A create that carries the client's own id (`key` names it), made safe to retry. After a failure
   * whose outcome is unknown (DISCONNECTED, TIMEOUT: a restart, a cluster's failover) it is sent
   * again, for up to three request timeouts. A CONFLICT to a try sent after a failure that may have
   * landed (those, or UNAVAILABLE, here or at an earlier call with the same key) is that try's
   * success, and `existing` answers with what it created.
   */
  async createOnce<E extends EventName<N>>(key: string, event: E, payload: RequestOf<N, E>, options: RequestOptions, existing: () => Promise<ReplyOf<N, E>>): Promise<ReplyOf<N, E>> {
    const deadline = performance.now() + 3 * (options.timeoutMs ?? this.timeoutMs);
    for (;;) {
      try {
        const reply = await this.request(event, payload, options);
        this.unsure.delete(key);
        return reply;
      } catch (error) {
        if (!(error instanceof HubError)) throw error;
        if (error.code === 'CONFLICT' && this.unsure.has(key)) {
          this.unsure.delete(key);
          // Another conflict (a cycle, say) leaves nothing by that id: then it is the answer.
          try {
            return await existing();
          } catch {
            throw error;
          }
        }
        if (MAY_HAVE_LANDED.has(error.code)) this.remember(key);
        // Closed, it will not come back to take the create: sent again, it would fail at once, in a loop.
        if (!RESEND.has(error.code) || performance.now() >= deadline || options.signal?.aborted || !this.reconnects) throw error;
      }
    }
  }

  /** Notes a create whose outcome is unknown; the oldest are forgotten past a bound. */
  private remember(key: string): void {
    this.unsure.add(key);
    if (this.unsure.size > UNSURE_KEPT) this.unsure.delete(this.unsure.values().next().value!);
  }

  /**
   * Set by an agent: what a request waits for before it goes again alone after its batch was not
   * read (the connection dropped at it, so the agent must register again before its reports).
   */
  beforeResend: ((event: string) => Promise<void>) | undefined;

  /** Waits for beforeResend, up to the request's deadline (then DISCONNECTED: it was not sent again). */
  private async readyToResend(event: string, deadline: number): Promise<void> {
    const ready = this.beforeResend?.(event);
    if (!ready) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new HubError('DISCONNECTED', `${event} was not sent again: the connection to the hub at ${this.url} was not ready for it in time`)), timerMs(Math.max(0, deadline - performance.now())));
    });
    try {
      await Promise.race([ready, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the socket is connected or will connect again (not closed by close() or the hub). */
  private get reconnects(): boolean {
    return this.socket.active || this.failover.redirecting;
  }

  /** Resolves once the socket is connected again; rejects with DISCONNECTED after `timeoutMs`, or when it will not reconnect. */
  private connected(event: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    const notSent = (why: string) => new HubError('DISCONNECTED', `${event} was not sent: ${why}${this.failover.lastError ? ` (${this.failover.lastError.message})` : ''}`);
    if (!this.reconnects) return Promise.reject(notSent(`the connection to the hub at ${this.url} was closed (by close(), or by the hub) and does not reconnect`));
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        this.socket.off('connect', onConnect);
        signal?.removeEventListener('abort', onAbort);
        this.waitingForConnection.delete(onClose);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = () => done();
      const onAbort = () => done(abortError(event, signal!, false));
      const onClose = () => done(notSent(`the connection to the hub at ${this.url} was closed (by close()) and does not reconnect`));
      const timer = setTimeout(() => {
        done(notSent(`no connection to the hub at ${this.url} for ${timeoutMs} ms; it keeps reconnecting`));
      }, timerMs(timeoutMs));
      this.socket.once('connect', onConnect);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waitingForConnection.add(onClose);
    });
  }

  /** Closes the socket; resolves once its last packets are flushed and the connection is closed. */
  async close(): Promise<void> {
    this.failover.stop();
    for (const fail of [...this.waitingForConnection]) fail();
    const engine = this.socket.io.engine;
    const closed = engine && engine.readyState !== 'closed' ? new Promise<void>((resolve) => engine.once('close', () => resolve())) : undefined;
    this.socket.disconnect();
    await closed;
  }
}
