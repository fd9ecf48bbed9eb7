import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIP } from 'node:net';

/** The address a request comes from, given its peer's address and its headers. */
export type AddressOf = (peer: string | undefined, headers: IncomingHttpHeaders) => string;

/** An IPv4 address as Node may name it on a dual-stack socket (`::ffff:127.0.0.1`), named plainly. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** The address and prefix length of a trusted proxy entry (an address, or a subnet `a/n`), or undefined when it is neither. */
export function proxyEntry(entry: string): { address: string; family: 'ipv4' | 'ipv6'; prefix: number | undefined } | undefined {
  const [address = '', prefix, extra] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return undefined;
  const bits = version === 4 ? 32 : 128;
  if (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits)) return undefined;
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: prefix === undefined ? undefined : Number(prefix) };
}

/** An X-Forwarded-For entry as an address: a port (`1.2.3.4:5678`, `[2001:db8::1]:443`) and brackets taken off; '' when it is none. */
function hopAddress(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  const address = plain(bracketed?.[1] ?? withPort?.[1] ?? hop);
  const version = isIP(address);
  return version === 0 ? '' : version === 6 ? address.toLowerCase() : address;
}

/**
 * Where requests come from, for the login throttle and the logs. A request whose peer is one of
 * `trustedProxies` (addresses or subnets, in any spelling) comes from the address its
 * `X-Forwarded-For` names: the right-most one that is not a trusted proxy itself (those to its
 * left are the client's to write, so never believed). Without trusted proxies, or without the
 * header, it is the peer's; a hop that is no IP address ends the walk where it is.
 */
export function clientAddresses(trustedProxies: readonly string[]): AddressOf {
  const list = new BlockList();
  for (const entry of trustedProxies) {
    const parsed = proxyEntry(entry);
    if (!parsed) throw new TypeError(`trusted proxy ${entry} is neither an IP address nor a subnet`);
    if (parsed.prefix === undefined) list.addAddress(parsed.address, parsed.family);
    else list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  const trusted = (address: string) => {
    const version = isIP(address);
    return version !== 0 && list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
  return (peer, headers) => {
    let address = plain(peer ?? '');
    if (trustedProxies.length === 0 || !trusted(address)) return address;
    const header = headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',');
    for (let i = hops.length - 1; i >= 0 && trusted(address); i--) {
      const hop = hopAddress(hops[i]!.trim());
      // Not an address (a proxy that passes on what the client wrote): believed no further.
      if (!hop) break;
      address = hop;
    }
    return address;
  };
}

/** Which page a browser says sent a request: one of the host it was sent to, or one of another site. */
export type SendingPage = 'this-site' | 'other-site';

/**
 * The page a browser says sent the request, or undefined for a client that is no browser (it sends
 * neither `Origin` nor `Sec-Fetch-Site`). Another site's: by `Sec-Fetch-Site`, or by an `Origin`
 * (every WebSocket a page opens carries one) whose host is not the one the request was sent to.
 * Used only to count failed logins apart: the headers are the client's to write.
 */
export function sendingPage(headers: IncomingHttpHeaders): SendingPage | undefined {
  const site = headers['sec-fetch-site'];
  const origin = headers.origin;
  if (site === 'cross-site' || site === 'same-site') return 'other-site';
  if (origin === undefined) return site === undefined ? undefined : 'this-site';
  try {
    return new URL(origin).host === headers.host?.toLowerCase() ? 'this-site' : 'other-site';
  } catch {
    // `null` (a sandboxed frame, a file: page) or no URL at all: no page of this hub.
    return 'other-site';
  }
}
