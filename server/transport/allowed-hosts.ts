import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { HubError } from '../../shared/errors.ts';
import type { Logger } from '../logger.ts';
import type { AddressOf } from './client-address.ts';

/** An `allowedHosts` entry: a host name (`.name` for it and its subdomains), an IP address, or `*`. */
export function hostEntry(entry: string): boolean {
  return entry === '*' || isIP(entry) !== 0 || (entry.length <= 253 && /^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i.test(entry));
}

/** The host name of a Host header (`name:port`, `[v6]:port`), lower case, without a trailing dot; undefined when it is none. */
export function hostName(header: string): string | undefined {
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d*)?$/i.exec(header);
  if (bracketed) return isIP(bracketed[1]!) === 6 ? bracketed[1]!.toLowerCase() : undefined;
  const plain = /^([^:[\]\s]+)(?::\d*)?$/.exec(header);
  return plain ? plain[1]!.toLowerCase().replace(/\.$/, '') : undefined;
}

/**
 * Whether a request's Host may be served: any IP address, `localhost` and `*.localhost` (which
 * browsers resolve to loopback without DNS), the hub's own names, and the `allowed` ones; `*` lets
 * every name in. A request without a Host (HTTP/1.0, a raw client) passes: every browser sends one.
 */
export function hostAllowed(allowed: '*' | readonly string[], own: readonly string[]): (header: string | undefined) => boolean {
  const entries = allowed === '*' ? ['*'] : [...allowed, ...own].map((entry) => entry.toLowerCase().replace(/\.$/, ''));
  if (entries.includes('*')) return () => true;
  const names = new Set(entries.filter((entry) => !entry.startsWith('.')));
  const domains = entries.filter((entry) => entry.startsWith('.'));
  return (header) => {
    if (header === undefined) return true;
    const name = hostName(header);
    if (name === undefined) return false;
    if (isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || names.has(name)) return true;
    return domains.some((domain) => name === domain.slice(1) || name.endsWith(domain));
  };
}

/** Whether the hub's `host` option is a loopback address or name (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || (isIP(name) === 4 && name.startsWith('127.'));
}

/** How the refusal of a Host starts, for clients that tell it from a refused token. */
export const HOST_REFUSED = 'this hub does not answer to the host name';

/** Distinct refused hosts logged at `warn`; past that, at `debug` (a page that retries must not flood the log). */
const HOSTS_LOGGED = 1000;

/**
 * The DNS-rebinding guard of every HTTP request and socket.io handshake: a request whose Host is
 * not allowed (see hostAllowed) gets a FORBIDDEN refusal naming the host and the option, and is logged.
 * `own` holds the names the hub is reached by without configuration: where it listens, its advertiseUrl.
 */
export function hostGuard(allowed: '*' | readonly string[], own: readonly string[], log: Logger, addressOf: AddressOf): (req: IncomingMessage) => HubError | undefined {
  const passes = hostAllowed(allowed, [...own, hostname()]);
  const logged = new Set<string>();
  return (req) => {
    const host = req.headers.host;
    if (passes(host)) return undefined;
    const name = hostName(host!) ?? host!;
    const first = !logged.has(name) && logged.size < HOSTS_LOGGED;
    if (first) logged.add(name);
    log[first ? 'warn' : 'debug']({ host, address: addressOf(req.socket.remoteAddress, req.headers), path: req.url?.slice(0, 200) }, 'request refused: its Host is not among allowedHosts');
    return new HubError(
      'FORBIDDEN',
      `${HOST_REFUSED} ${JSON.stringify(name.slice(0, 253))}: a page whose name points at the hub's address (DNS rebinding) would pass for one of its own. ` +
        'Reach it by its IP address or localhost, or add the name to the hub\'s allowedHosts (switchboard start --allowed-hosts NAME)',
    );
  };
}
