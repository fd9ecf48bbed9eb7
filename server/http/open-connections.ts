import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The connections of the hub's own HTTP server, and which are being answered. A server's close
 * waits for every connection to end, and one whose request never came whole (Node waits a minute
 * for its headers) or sits idle held the hub's stop, and its final snapshot, that long. At close,
 * those are cut; one being answered gets its reply (a 503 as the hub goes) and ends after it.
 */
export class OpenConnections {
  private readonly open = new Set<Duplex>();
  /** Replies in progress, by connection (more than one when requests are pipelined). */
  private readonly answering = new Map<Duplex, number>();
  private closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: Duplex) => {
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
    });
    // socket.io takes an upgraded connection over and closes it itself.
    server.on('upgrade', (_request: IncomingMessage, socket: Duplex) => this.open.delete(socket));
  }

  /** Notes a request the hub answers on its connection, until its reply is done or aborted. */
  answer(request: IncomingMessage, response: ServerResponse): void {
    const socket = request.socket;
    this.answering.set(socket, (this.answering.get(socket) ?? 0) + 1);
    response.once('close', () => {
      const left = (this.answering.get(socket) ?? 1) - 1;
      if (left > 0) return void this.answering.set(socket, left);
      this.answering.delete(socket);
      // Once its reply is written out, as the server's close would for an idle one.
      if (this.closing) socket.end();
    });
  }

  /** Cuts every connection not being answered; each answered one ends once its reply is out. */
  close(): void {
    this.closing = true;
    for (const socket of this.open) if (!this.answering.has(socket)) socket.destroy();
  }
}
