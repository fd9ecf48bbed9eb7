import type { Socket } from 'socket.io';

/** What we read of an engine.io connection: its packets waiting, its transport, its events. */
interface EngineConnection {
  writeBuffer?: Array<{ data?: unknown }>;
  transport?: { name: string; socket?: { bufferedAmount?: number; terminate?(): void; pause?(): void; resume?(): void } };
  readyState: string;
  on(event: 'packetCreate', listener: (packet: { data?: unknown }) => void): void;
  on(event: 'flush', listener: () => void): void;
  once(event: 'close', listener: () => void): void;
  close(discard?: boolean): void;
}

function sizeOf(data: unknown): number {
  if (typeof data === 'string') return data.length;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength;
  return 0;
}

/** Bytes in each connection's engine.io write buffer, counted as packets are queued and reset when it is flushed. */
const queued = new WeakMap<object, { bytes: number; paused: boolean }>();

/** How often a connection that stopped being read from looks whether its peer has caught up. */
const RESUME_CHECK_MS = 50;

/** Starts counting what a connection queues (once per connection; its namespaces share it). */
export function trackBacklog(socket: Socket): void {
  const conn = socket.conn as unknown as EngineConnection;
  if (queued.has(conn)) return;
  const count = { bytes: 0, paused: false };
  for (const packet of conn.writeBuffer ?? []) count.bytes += sizeOf(packet.data);
  queued.set(conn, count);
  conn.on('packetCreate', (packet) => (count.bytes += sizeOf(packet.data)));
  // The write buffer went to the transport, where ws counts what the peer has not taken.
  conn.on('flush', () => (count.bytes = 0));
}

/**
 * Bytes sent to a connection that its peer has not taken yet: queued by engine.io while the
 * transport is busy, and written to the WebSocket but not to the kernel (which takes a few MB,
 * then nothing while the peer does not read).
 */
export function unreadBytes(socket: Socket): number {
  const conn = socket.conn as unknown as EngineConnection;
  return (queued.get(conn)?.bytes ?? 0) + (conn.transport?.name === 'websocket' ? (conn.transport.socket?.bufferedAmount ?? 0) : 0);
}

/** Closes a connection now, letting go of what it has not read (a plain close would wait for the peer to read it). */
export function dropConnection(socket: Socket): void {
  const conn = socket.conn as unknown as EngineConnection;
  const transport = conn.transport;
  conn.close(true);
  if (transport?.name === 'websocket') transport.socket?.terminate?.();
}

/**
 * Stops reading a WebSocket connection's requests until its peer has read all but `resumeBelow`
 * bytes of what it was sent: TCP then holds the client's further requests, at the client's cost.
 * A peer that never reads cannot answer pings either, so engine.io closes it after its ping
 * timeout. False when the transport cannot be paused (HTTP long-polling).
 */
export function pauseReading(socket: Socket, resumeBelow: number): boolean {
  const conn = socket.conn as unknown as EngineConnection;
  const count = queued.get(conn);
  const ws = conn.transport?.name === 'websocket' ? conn.transport.socket : undefined;
  if (!count || !ws?.pause || !ws.resume) return false;
  if (count.paused) return true;
  count.paused = true;
  ws.pause();
  const check = setInterval(() => {
    if (conn.readyState !== 'open') return clearInterval(check);
    if (unreadBytes(socket) > resumeBelow) return;
    clearInterval(check);
    count.paused = false;
    ws.resume!();
  }, RESUME_CHECK_MS);
  check.unref();
  conn.once('close', () => clearInterval(check));
  return true;
}
