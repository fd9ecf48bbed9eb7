import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';

/** The address a request comes from, given its peer's address and its headers. */
export type AddressOf = (peer: string | undefined, headers: IncomingHttpHeaders) => string;

/** An IPv4 address as Node may name it on a dual-stack socket (`::ffff:127.0.0.1`), named plainly. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * Where requests come from, for the login throttle and the logs. A request whose peer is one of
 * `trustedProxies` comes from the address its `X-Forwarded-For` names: the right-most one that is
 * not a trusted proxy itself (those to its left are the client's to write, so never believed).
 * Without trusted proxies, or without the header, it is the peer's; a hop that is no IP address
 * ends the walk where it is.
 */
export function clientAddresses(trustedProxies: readonly string[]): AddressOf {
  const trusted = new Set(trustedProxies.map(plain));
  return (peer, headers) => {
    let address = plain(peer ?? '');
    if (!trusted.has(address)) return address;
    const header = headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
    for (let i = hops.length - 1; i >= 0 && trusted.has(address); i--) {
      const hop = plain(hops[i]!.trim());
      // Not an address (a proxy that passes on what the client wrote): believed no further.
      if (isIP(hop) === 0) break;
      address = hop;
    }
    return address;
  };
}
