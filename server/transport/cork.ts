import type { Server } from 'socket.io';
import { corked, type Corkable } from '../../shared/corked.ts';

/** What we touch of engine.io's WebSocket transport: its packets out, and the TCP socket under ws. */
interface WebSocketTransport {
  name: string;
  send(packets: unknown[]): void;
  socket?: { _socket?: Corkable | null };
}

/** Makes one flush of several packets one TCP write: corked around the loop that sends them as frames. */
function batchSends(transport: WebSocketTransport): void {
  const tcp = transport.name === 'websocket' ? transport.socket?._socket : undefined;
  if (!tcp) return;
  const send = transport.send;
  transport.send = function batched(this: WebSocketTransport, packets: unknown[]) {
    if (packets.length === 1) return send.call(this, packets);
    corked(tcp, () => send.call(this, packets));
  };
}

/**
 * While a write is under way, engine.io holds a connection's packets and sends them together once
 * it is done (a commit acks dozens of requests on one agent's connection), but ws writes each as a
 * frame of its own, one system call per frame. Corked around the loop, they leave in one write.
 * Reached through engine.io's transport and ws's `_socket`: neither offers a way to batch frames.
 */
export function batchWebSocketWrites(io: Server): void {
  io.engine.on('connection', (connection: { transport: WebSocketTransport; on(event: 'upgrade', listener: (transport: WebSocketTransport) => void): void }) => {
    batchSends(connection.transport);
    connection.on('upgrade', batchSends);
  });
}
