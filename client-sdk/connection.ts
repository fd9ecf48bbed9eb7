import { io, type Socket } from 'socket.io-client';
import type { EventName, NamespaceName, ReplyOf, RequestOf } from '../shared/contract.ts';
import type { Ack } from '../shared/envelope.ts';
import { HubError, isErrorCode } from '../shared/errors.ts';

/** How to reach a hub. */
export interface ConnectOptions {
  /** The hub's base URL, e.g. http://127.0.0.1:4700 */
  url: string;
  token: string;
  /** How long a request waits for its ack before failing with TIMEOUT (default 10 s). */
  requestTimeoutMs?: number;
  /** How long the first connection may take before failing with UNAVAILABLE (default 10 s). */
  connectTimeoutMs?: number;
}

/** Turns a connect_error into a HubError with the hub's code. */
function connectError(error: Error & { data?: unknown }): HubError {
  const data = error.data as { code?: unknown; message?: unknown } | undefined;
  if (data && isErrorCode(data.code)) return new HubError(data.code, String(data.message ?? error.message));
  return new HubError('UNAVAILABLE', `cannot reach the hub: ${error.message}`);
}

/**
 * A socket to one namespace of the hub that sends typed requests and turns their ack
 * envelopes back into values or thrown HubErrors. Reconnects on its own.
 */
export class Connection<N extends NamespaceName> {
  private constructor(
    readonly socket: Socket,
    private readonly timeoutMs: number,
  ) {}

  /** Connects to `namespace`; rejects with the hub's error code if the token is refused. */
  static open<N extends NamespaceName>(namespace: N, options: ConnectOptions, auth: Record<string, unknown> = {}): Promise<Connection<N>> {
    const socket = io(new URL(`/${namespace}`, options.url).href, {
      auth: { ...auth, token: options.token },
      transports: ['websocket'],
      // Each client gets its own connection, so closing or losing one never takes another down.
      forceNew: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 2000,
    });
    return new Promise((resolve, reject) => {
      let lastError = new HubError('UNAVAILABLE', `no answer from ${options.url}`);
      const giveUp = (error: HubError) => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
        socket.disconnect();
        reject(error);
      };
      const timer = setTimeout(() => giveUp(lastError), options.connectTimeoutMs ?? 10_000);
      const onError = (error: Error) => {
        lastError = connectError(error);
        // A refused token will not become valid by retrying; a network error might.
        if (lastError.code !== 'UNAVAILABLE') giveUp(lastError);
      };
      const onConnect = () => {
        clearTimeout(timer);
        socket.off('connect_error', onError);
        resolve(new Connection<N>(socket, options.requestTimeoutMs ?? 10_000));
      };
      socket.once('connect', onConnect);
      socket.on('connect_error', onError);
    });
  }

  /** Sends a request and resolves with its reply, or throws the HubError the hub answered with. */
  async request<E extends EventName<N>>(event: E, payload: RequestOf<N, E>): Promise<ReplyOf<N, E>> {
    let ack: Ack<ReplyOf<N, E>>;
    try {
      ack = await this.socket.timeout(this.timeoutMs).emitWithAck(event, payload);
    } catch {
      throw new HubError('TIMEOUT', `${event} got no answer within ${this.timeoutMs} ms`);
    }
    if (ack.ok) return ack.data;
    throw new HubError(isErrorCode(ack.error.code) ? ack.error.code : 'INTERNAL', ack.error.message, ack.error.issues);
  }

  /** Closes the socket. */
  close(): void {
    this.socket.disconnect();
  }
}
