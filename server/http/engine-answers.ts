import type { IncomingMessage } from 'node:http';
import type { Server } from 'socket.io';
import { HubError } from '../../shared/errors.ts';
import { BASE_HEADERS } from './router.ts';

/**
 * A JSONP long-polling handshake (`j=` in the query) is refused: its answers are script that any
 * page may include, and no client of this hub (socket.io 4 speaks EIO 4, without JSONP) asks for it.
 */
export function jsonpRefusal(req: IncomingMessage): HubError | undefined {
  // URLSearchParams never throws, whatever the target holds.
  const target = req.url ?? '';
  const query = new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');
  return query.has('j') ? new HubError('FORBIDDEN', 'JSONP long-polling is not served: use the polling or websocket transport') : undefined;
}

/** socket.io's long-polling answers (which carry client text as text/plain) get the headers of every answer of the hub: nosniff, no referrer. */
export function secureEngineAnswers(io: Server): void {
  io.engine.on('headers', (headers: Record<string, string>) => Object.assign(headers, BASE_HEADERS));
}
