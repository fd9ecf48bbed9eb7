import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The connections of the hub's own HTTP server, and which are being answered. A server's close
 * waits for every connection to end, and one whose request never came whole (Node waits a minute
 * for its headers) or sits idle held the hub's stop, and its final snapshot, that long. At close,
 * those are cut after a moment; one being answered gets its reply (a 503 as the hub goes) and ends after it.
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
    // No 'upgrade' listener: with one of ours beside socket.io's, its Python clients were slow to
    // reconnect to the next hub (2 of 12 runs of the reconnect tests failed). socket.io closes the
    // WebSockets itself at close, before the stragglers' cut.
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

  /**
   * Cuts, `afterMs` from now, every connection still open that is not being answered; each one
   * being answered ends once its reply is out. Not at once: socket.io's clients are first told
   * the hub is going (in a long poll's answer, say), and reconnect soon after to the next hub.
   */
  close(afterMs: number): void {
    this.closing = true;
    const cut = setTimeout(() => {
      for (const socket of this.open) if (!this.answering.has(socket)) socket.destroy();
    }, afterMs);
    // A hub closed before then leaves nothing to cut, and no reason to keep the process.
    cut.unref();
  }
}
