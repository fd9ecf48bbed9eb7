import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HubError, type ErrorCode } from '../../shared/errors.ts';
import { faultReason } from '../hub-fault.ts';
import type { Role, TokenGrant } from '../../shared/schemas/tokens.ts';
import type { Logger } from '../logger.ts';
import { requireRole, type TokenRegistry } from '../transport/auth.ts';
import { sendingPage, type AddressOf } from '../transport/client-address.ts';
import { refusalLevel } from '../transport/login-throttle.ts';

/** What a route returns: a status, a body and its content type (JSON by default). */
export interface HttpReply {
  status?: number;
  /** A value sent as JSON, a string, or the parts of a big body (written one at a time, as the client reads). */
  body: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export interface HttpRequest {
  params: string[];
  query: URLSearchParams;
  grant: TokenGrant | undefined;
  raw: IncomingMessage;
}

export interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  /** Roles allowed; an empty list means no token is needed. */
  roles: readonly Role[];
  handle: (request: HttpRequest) => HttpReply | Promise<HttpReply>;
}

const STATUS: Record<ErrorCode, number> = {
  VALIDATION: 400,
  NOT_FOUND: 404,
  INVALID_TRANSITION: 409,
  STALE_ATTEMPT: 409,
  FORBIDDEN: 403,
  UNAUTHENTICATED: 401,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  // Raised by clients only; the HTTP API never answers with it.
  DISCONNECTED: 503,
  INTERNAL: 500,
  // A follower's refusal of a /control or /agent connection; no HTTP route answers with it yet.
  NOT_LEADER: 503,
};

/**
 * Sent with every answer: a browser takes the body as the content type says (never sniffs a
 * report's JSON or Markdown as HTML), and no page of the hub sends its address, which may hold
 * `?token=`, as a Referer.
 */
export const BASE_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' } as const;

function send(res: ServerResponse, reply: HttpReply): void {
  if (Array.isArray(reply.body) && reply.body.every((part) => Buffer.isBuffer(part))) return sendParts(res, reply, reply.body as Buffer[]);
  const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
  res.writeHead(reply.status ?? 200, {
    ...BASE_HEADERS,
    'content-type': reply.contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...reply.headers,
  });
  res.end(text);
}

/** Writes a big body part by part, each once the client has taken the one before. */
function sendParts(res: ServerResponse, reply: HttpReply, parts: readonly Buffer[]): void {
  let bytes = 0;
  for (const part of parts) bytes += part.length;
  res.writeHead(reply.status ?? 200, { ...BASE_HEADERS, 'content-type': reply.contentType ?? 'application/json; charset=utf-8', 'content-length': bytes, ...reply.headers });
  // A client that goes away ends the pipeline with an error; there is nobody left to tell.
  pipeline(Readable.from(parts, { objectMode: false }), res).catch(() => undefined);
}

function refuse(res: ServerResponse, error: HubError): void {
  send(res, { status: STATUS[error.code], body: { ok: false, error: error.toJSON() } });
}

/** A request listener that answers every request with `error` (e.g. while the hub is starting). */
export function refuseAll(error: HubError): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => refuse(res, error);
}

/** The request's URL; a target no URL parser accepts (`//[`) is VALIDATION, not a crash. */
function requestUrl(req: IncomingMessage): URL {
  try {
    return new URL(req.url ?? '/', 'http://hub');
  } catch {
    throw new HubError('VALIDATION', 'malformed request target');
  }
}

/** A path segment, percent-decoded; malformed percent-encoding (`%E0%A4%A`) is VALIDATION. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HubError('VALIDATION', `malformed percent-encoding in the path: ${segment.slice(0, 100)}`);
  }
}

/** Builds the HTTP request listener: the Host check, bearer-token auth, routing, and errors as the ack's error object. */
export function createRouter(routes: readonly Route[], tokens: TokenRegistry, log: Logger, addressOf: AddressOf, hostRefusal: (req: IncomingMessage) => HubError | undefined) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // socket.io answers its own path on the same server. It compares the raw target, so this
    // must too: `/../socket.io/` normalises to that path, yet socket.io leaves it to us.
    if (req.url?.startsWith('/socket.io/')) return;
    const refused = hostRefusal(req);
    if (refused) return refuse(res, refused);
    let url: URL;
    try {
      url = requestUrl(req);
    } catch (error) {
      return refuse(res, error as HubError);
    }
    // HEAD is GET without the body (RFC 9110 §9.3.2), which Node leaves out of a HEAD answer itself.
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = routes.find((r) => r.method === method && r.pattern.test(url.pathname));
    if (!route) return send(res, { status: 404, body: { ok: false, error: { code: 'NOT_FOUND', message: `no route ${req.method} ${url.pathname}` } } });
    // Set once the token is known, and once it is let in: a refusal before that is the token's, and logged.
    let grant: TokenGrant | undefined;
    let admitted = false;
    const address = addressOf(req.socket.remoteAddress, req.headers);
    const run = async (): Promise<HttpReply> => {
      const header = req.headers.authorization;
      // The scheme is case-insensitive and followed by one or more spaces (RFC 9110 §11.1, §11.4).
      const bearer = header === undefined ? null : /^bearer +(.*)$/i.exec(header);
      const token = bearer ? bearer[1]!.trim() : (url.searchParams.get('token') ?? undefined);
      if (route.roles.length) {
        grant = tokens.authenticate(token, address, sendingPage(req.headers));
        requireRole(grant, route.roles);
      }
      admitted = true;
      const params = route.pattern.exec(url.pathname)!.slice(1).map(decodeSegment);
      return route.handle({ params, query: url.searchParams, grant, raw: req });
    };
    run().then(
      (reply) => send(res, reply),
      (error: unknown) => {
        if (!(error instanceof HubError)) log.error({ err: error, path: url.pathname }, 'http route failed');
        else if (error.code === 'INTERNAL') log.error({ path: url.pathname, reason: faultReason(error) }, 'http route failed: the hub could not serve it');
        else if (!admitted) log[refusalLevel(error.code)]({ path: url.pathname, code: error.code, reason: error.message, role: grant?.role, tokenName: grant?.name, address }, 'http request refused');
        refuse(res, error instanceof HubError ? error : new HubError('INTERNAL', 'internal error'));
      },
    );
  };
}
