import type { Socket } from 'socket.io-client';
import type { HubError } from '../shared/errors.ts';
import { connectError, leaderOf, type ConnectFailure } from './connect-error.ts';
import { hubUrl } from './hub-url.ts';
import { Listeners } from './listeners.ts';

/** The pause before following a follower's refusal, doubled at each refusal in a row up to the most (given). */
const REDIRECT_DELAY_MS = 100;

/** A failed attempt to connect: to where, why, and whether the socket tries again (here or elsewhere). */
export interface FailedAttempt {
  url: string;
  error: HubError;
  retrying: boolean;
}

/**
 * Which node of the hub a socket talks to, and how it moves on. After a follower's NOT_LEADER
 * refusal it connects to the leader the follower names (or the next node of the list), which
 * socket.io does not do by itself; after a transport error it points socket.io's own next
 * reconnection attempt at the next node of the list. With one URL it changes nothing.
 */
export class Failover {
  /** The URL of the node connected to, or being tried. */
  url: string;
  /** Why the last attempt failed, until the next connection. */
  lastError: HubError | undefined;
  /** Where in `urls` the rotation goes on from; following a leader does not move it. */
  private position = 0;
  private delayMs = REDIRECT_DELAY_MS;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the node last sent anything (performance.now()): a packet, or engine.io's ping. */
  private heardAt = 0;
  private readonly listeners = new Listeners<{ failure: FailedAttempt }>();

  /** `urls`: the nodes, checked and without repeats (`hubUrls`); the socket starts on the first. */
  constructor(
    private readonly socket: Socket,
    private readonly urls: readonly string[],
    namespace: string,
    private readonly maxDelayMs: number,
  ) {
    this.url = urls[0]!;
    socket.on('connect_error', (error: ConnectFailure) => this.onConnectError(error, namespace));
    socket.on('connect', () => {
      this.lastError = undefined;
      this.delayMs = REDIRECT_DELAY_MS;
    });
    const heard = () => (this.heardAt = performance.now());
    socket.io.on('packet', heard);
    socket.io.on('ping', heard);
  }

  /** True while a refused socket waits to try another node: it is not active, yet it will connect. */
  get redirecting(): boolean {
    return this.timer !== undefined;
  }

  /** Calls `listener` after every failed attempt, once the next one is decided. */
  onFailure(listener: (attempt: FailedAttempt) => void): () => void {
    return this.listeners.on('failure', listener);
  }

  /**
   * Gives up on the node connected to if it stopped answering, having sent nothing since `since`
   * (performance.now() when a request that got no answer was sent): with a list of nodes, the
   * connection is dropped and socket.io's reconnection goes to the next one. A node that answers
   * other requests is only slow with this one (a short `timeoutMs`): it is kept. One node: nothing.
   */
  abandon(since: number): void {
    if (this.urls.length < 2 || !this.socket.connected || this.heardAt > since) return;
    this.moveTo(this.next());
    this.socket.io.engine?.close();
  }

  /** Stops a pending redirect (the connection is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onConnectError(failure: ConnectFailure, namespace: string): void {
    const url = this.url;
    const error = connectError(failure, url, namespace);
    this.lastError = error;
    // A transport error leaves the socket active: socket.io's Manager reconnects by itself.
    let retrying = this.socket.active;
    if (retrying && this.urls.length > 1) this.moveTo(this.next());
    if (!retrying && (error.code === 'NOT_LEADER' || error.code === 'RATE_LIMITED')) {
      // A refusal by the server's middleware ends socket.io's reconnection: we connect again ourselves,
      // to the leader a follower names, or to the node that throttles logins from here, once it lets us in.
      if (error.code === 'NOT_LEADER') {
        const leader = leaderOf(failure);
        const leaderUrl = leader ? wellFormed(leader.url) : undefined;
        this.moveTo(leaderUrl !== undefined && leaderUrl !== url ? leaderUrl : this.next());
      }
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.socket.connect();
      }, this.delayMs);
      this.delayMs = Math.min(this.delayMs * 2, this.maxDelayMs);
      retrying = true;
    }
    this.listeners.emit('failure', { url, error, retrying });
  }

  /** The next node of the list after the rotation's place, never the one just tried when there are others. */
  private next(): string {
    do this.position = (this.position + 1) % this.urls.length;
    while (this.urls.length > 1 && this.urls[this.position] === this.url);
    return this.urls[this.position]!;
  }

  private moveTo(url: string): void {
    this.url = url;
    // The Manager's base URL, which is private in its typings: it builds each new engine (every
    // connection and reconnection attempt) from it. The namespace is the socket's own, unchanged.
    (this.socket.io as unknown as { uri: string }).uri = url;
  }
}

/** The leader's URL as the SDK writes URLs, or undefined when the follower sent something else. */
function wellFormed(url: string): string | undefined {
  try {
    return hubUrl(url);
  } catch {
    return undefined;
  }
}
