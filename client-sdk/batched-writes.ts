import type { Socket } from 'socket.io-client';
import { corked, type Corkable } from '../shared/corked.ts';

/** What we touch of engine.io-client's WebSocket transport in Node: its packets out, and the TCP socket under ws. */
interface WebSocketTransport {
  write(packets: unknown[]): void;
  ws?: { _socket?: Corkable | null } | null;
}

/** Makes one write of several packets one TCP write: corked around the loop that sends them as frames. */
function batchTransportWrites(transport: WebSocketTransport): void {
  const write = transport.write;
  transport.write = function batched(this: WebSocketTransport, packets: unknown[]) {
    const tcp = packets.length > 1 ? this.ws?._socket : undefined;
    if (!tcp) return write.call(this, packets);
    corked(tcp, () => write.call(this, packets));
  };
}

/**
 * While a write is under way, engine.io-client holds the packets emitted after it and sends them
 * together in the next tick (an agent's tasks report in bursts), but ws writes each as a frame of
 * its own, one system call per frame. Corked around the loop, they leave in one write. Reached
 * through engine.io-client's transport and ws's `_socket` (Node only; a browser's WebSocket has
 * neither, and is left as it is), since neither offers a way to batch frames.
 */
export function batchSocketWrites(socket: Socket): void {
  socket.io.on('open', () => {
    const transport = (socket.io.engine as unknown as { transport?: WebSocketTransport } | undefined)?.transport;
    if (transport) batchTransportWrites(transport);
  });
}
