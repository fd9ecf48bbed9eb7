import type { Server } from 'socket.io';

/** What we touch of engine.io's WebSocket transport: its packets out, and the TCP socket under ws. */
interface WebSocketTransport {
  name: string;
  send(packets: unknown[]): void;
  socket?: { _socket?: Corkable | null };
}

type Corkable = { cork(): void; uncork(): void };

const corked = new Set<Corkable>();

function uncorkAll(): void {
  for (const tcp of corked) tcp.uncork();
  corked.clear();
}

/** Holds a connection's frames until this turn of the event loop ends, then writes them at once. */
function batchSends(transport: WebSocketTransport): void {
  const tcp = transport.name === 'websocket' ? transport.socket?._socket : undefined;
  if (!tcp) return;
  const send = transport.send;
  transport.send = function batched(this: WebSocketTransport, packets: unknown[]) {
    if (!corked.has(tcp)) {
      tcp.cork();
      corked.add(tcp);
      if (corked.size === 1) setImmediate(uncorkAll);
    }
    send.call(this, packets);
  };
}

/**
 * ws writes each frame with a system call of its own: under load, one per ack of a commit that
 * answers dozens of requests on a connection. Corked until the turn ends, a connection's frames of
 * one turn leave in one write. Reached through engine.io's transport and ws's `_socket`: neither
 * offers a way to batch frames.
 */
export function batchWebSocketWrites(io: Server): void {
  io.engine.on('connection', (connection: { transport: WebSocketTransport; on(event: 'upgrade', listener: (transport: WebSocketTransport) => void): void }) => {
    batchSends(connection.transport);
    connection.on('upgrade', batchSends);
  });
}
