import { HubError, isErrorCode } from '../shared/errors.ts';

/** Where tokens come from, for anyone whose token was refused. */
/** Where a refused token's user finds the right one (the CLI's HTTP commands say it too). */
export const WHERE_TOKENS_COME_FROM =
  'Tokens come from the hub: it prints them when it starts, `npx switchboard tokens list` lists them, ' +
  'and they are stored in <dataDir>/tokens.json (./.switchboard/tokens.json by default).';

/** Which role each namespace needs, for a token of the wrong role. */
const ROLE_NEEDED: Record<string, string> = {
  control: 'connectControl takes an admin token',
  agent: 'connectAgent takes an agent token',
  monitor: 'connectMonitor takes a monitor or admin token',
};

/** What socket.io-client hands to `connect_error`: the hub's refusal, or a transport error. */
export type ConnectFailure = Error & { data?: unknown; description?: unknown };

/** The leader a follower names in its NOT_LEADER refusal. */
export interface Leader {
  nodeId: string;
  url: string;
}

/**
 * The leader named by a follower's NOT_LEADER refusal: null when the follower knows none right now
 * (a failover is under way), or when what it sent is not a leader; undefined for any other failure.
 */
export function leaderOf(error: ConnectFailure): Leader | null | undefined {
  const data = error.data as { code?: unknown; leader?: { nodeId?: unknown; url?: unknown } | null } | undefined;
  if (data?.code !== 'NOT_LEADER') return undefined;
  const leader = data.leader;
  return leader && typeof leader.nodeId === 'string' && typeof leader.url === 'string' ? { nodeId: leader.nodeId, url: leader.url } : null;
}

/** The system error (ECONNREFUSED, ENOTFOUND, EPROTO, …) under a transport error, if any. */
function systemError(error: ConnectFailure): { code?: string; message: string } | undefined {
  const description = error.description as { error?: { code?: unknown; message?: unknown }; message?: unknown } | undefined;
  const cause = description?.error;
  if (cause && typeof cause.message === 'string') return { ...(typeof cause.code === 'string' ? { code: cause.code } : {}), message: cause.message.trim() };
  if (description && typeof description.message === 'string') return { message: description.message.trim() };
  return undefined;
}

/** What to do about a network failure, by its system error code. */
function advice(url: string, code: string | undefined, message: string): string {
  if (code === 'ECONNREFUSED') return 'Is the hub running? Start it with `npx switchboard start`.';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `The host name of ${url} does not resolve: check the URL.`;
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'Check the host, port and firewall.';
  if (/SSL|TLS|CERT|EPROTO/i.test(`${code ?? ''} ${message}`)) {
    return 'The TLS handshake failed: a hub started with `npx switchboard start` speaks plain http, so use http:// unless a TLS proxy stands in front of it.';
  }
  // A gateway's own answer: the proxy is there, the hub behind it is not (down, restarting).
  if (/Unexpected server response: 50[234]\b/i.test(message)) return `A proxy at ${url} answered for the hub, which it could not reach: is the hub behind it running?`;
  // What a hub answers a WebSocket handshake whose Host it does not serve (engine.io says 400, not 403).
  if (/Unexpected server response: 400\b/i.test(message) && !alwaysAnswered(url)) return hostAdvice(url);
  if (/Unexpected server response/i.test(message)) return `The server at ${url} is not a Switchboard hub (or not this version of one): check the URL and port.`;
  return 'Is the hub running? Start it with `npx switchboard start`.';
}

/** The host name of a URL, or the URL itself when it is none (it was checked before connecting). */
function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

/** Whether a hub answers to the URL's host whatever its allowedHosts: an IP address (IPv6 bracketed), localhost. */
function alwaysAnswered(url: string): boolean {
  const host = hostOf(url);
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[') || host === 'localhost' || host.endsWith('.localhost');
}

/** What to do about a WebSocket handshake refused with 400: most likely a host name the hub does not answer to. */
function hostAdvice(url: string): string {
  const host = hostOf(url);
  return `A Switchboard hub refuses the handshake of a host name not among its allowedHosts (its log then says "request refused: its Host is not among allowedHosts"): connect by IP address or localhost, or start the hub with --allowed-hosts ${host}. Otherwise the server at ${url} is not a Switchboard hub: check the URL and port.`;
}

/**
 * A follower's refusal, for when the SDK could not follow it: who the leader is, and what to check.
 * With no leader, the hub's own words too: they may say why none can lead (a damaged journal).
 */
function notLeader(url: string, namespace: string, leader: Leader | null, refusal: string): HubError {
  const serves = `the hub at ${url} is a follower in a cluster and serves /${namespace} only on its leader`;
  if (leader) return new HubError('NOT_LEADER', `${serves}, ${leader.nodeId} at ${leader.url}: check that the leader is running and reachable from here`);
  return new HubError('NOT_LEADER', `${serves}, and it knows no leader right now (a failover may be under way): wait for the cluster to have one, or list every node's URL in \`url\`. The hub said: ${refusal}`);
}

/**
 * Turns a `connect_error` into a HubError that says what went wrong and what to do: the hub's
 * refusal of the token (UNAUTHENTICATED, FORBIDDEN) with where tokens come from, a follower's
 * refusal (NOT_LEADER) naming the leader, or a network failure (DISCONNECTED) naming the URL, its
 * cause and the fix.
 */
export function connectError(error: ConnectFailure, url: string, namespace: string): HubError {
  const data = error.data as { code?: unknown; message?: unknown } | undefined;
  if (data && isErrorCode(data.code)) {
    const refusal = String(data.message ?? error.message);
    if (data.code === 'UNAUTHENTICATED') return new HubError(data.code, `the hub at ${url} refused the token: ${refusal}. ${WHERE_TOKENS_COME_FROM}`);
    if (data.code === 'FORBIDDEN') return new HubError(data.code, `the hub at ${url} refused the token: ${refusal} (${ROLE_NEEDED[namespace] ?? namespace}). ${WHERE_TOKENS_COME_FROM}`);
    if (data.code === 'NOT_LEADER') return notLeader(url, namespace, leaderOf(error) ?? null, refusal);
    return new HubError(data.code, `the hub at ${url} refused the connection: ${refusal}`);
  }
  if (error.message === 'Invalid namespace') {
    return new HubError('DISCONNECTED', `the server at ${url} speaks socket.io but has no /${namespace} namespace: it is not a Switchboard hub; check the URL and port`);
  }
  return new HubError('DISCONNECTED', unreachable(url, systemError(error) ?? { message: error.message }));
}

/**
 * Why the hub at `url` could not be reached and what to do, from the system error (`code`, such as
 * ECONNREFUSED, and its message): the SDK's words, which the CLI's HTTP commands use too.
 */
export function unreachable(url: string, cause: { code?: string; message: string }): string {
  const what = `${cause.code ? `${cause.code}: ` : ''}${cause.message.trim()}`;
  return `cannot reach the hub at ${url} (${what}). ${advice(url, cause.code, what)}`;
}
