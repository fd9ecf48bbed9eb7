import { describe, expect, it } from 'vitest';
import { HubOptions } from '../server/options.ts';
import { clientAddresses, sendingPage } from '../server/transport/client-address.ts';

describe('clientAddresses (where a request comes from)', () => {
  const behind = clientAddresses(['127.0.0.1', '10.0.0.9']);
  const xff = (value: string | string[]) => ({ 'x-forwarded-for': value });

  it('takes the right-most address a chain of trusted proxies names', () => {
    expect(behind('127.0.0.1', xff('203.0.113.5'))).toBe('203.0.113.5');
    // Through two trusted proxies; what the client wrote to the left is not believed.
    expect(behind('::ffff:127.0.0.1', xff('198.51.100.1, 203.0.113.5, 10.0.0.9'))).toBe('203.0.113.5');
    expect(behind('127.0.0.1', xff(['198.51.100.1', '2001:db8::1']))).toBe('2001:db8::1');
    expect(behind('127.0.0.1', xff('::ffff:203.0.113.5'))).toBe('203.0.113.5');
  });

  it('knows a trusted proxy in any spelling of its address, or within a trusted subnet', () => {
    // Node names a peer in lower case and short form; the option may not.
    expect(clientAddresses(HubOptions.parse({ trustedProxies: ['2001:DB8::10'] }).trustedProxies)('2001:db8::10', xff('203.0.113.5'))).toBe('203.0.113.5');
    expect(clientAddresses(['2001:db8:0:0:0:0:0:10'])('2001:db8::10', xff('203.0.113.5'))).toBe('203.0.113.5');
    expect(clientAddresses(['127.0.0.1', 'fd00::9'])('127.0.0.1', xff('203.0.113.5, FD00:0::9'))).toBe('203.0.113.5');
    const fleet = clientAddresses(['10.0.0.0/8', 'fd00::/8']);
    expect(fleet('10.1.2.3', xff('203.0.113.5, 10.4.5.6'))).toBe('203.0.113.5');
    expect(fleet('fd12::1', xff('2001:DB8::7'))).toBe('2001:db8::7');
    expect(fleet('11.0.0.1', xff('203.0.113.5'))).toBe('11.0.0.1');
  });

  it('takes the address of a hop written with its port, or bracketed', () => {
    expect(behind('127.0.0.1', xff('203.0.113.5:41234'))).toBe('203.0.113.5');
    expect(behind('127.0.0.1', xff('[2001:db8::1]:41234'))).toBe('2001:db8::1');
    expect(behind('127.0.0.1', xff('[2001:db8::1]'))).toBe('2001:db8::1');
  });

  it('refuses an option entry that is neither an address nor a subnet', () => {
    for (const entry of ['proxy.local', '10.0.0.0/33', 'fd00::/129', '10.0.0.1/8/8', '10.0.0.1/', '']) {
      expect(HubOptions.safeParse({ trustedProxies: [entry] }).success, entry).toBe(false);
    }
    expect(HubOptions.parse({ trustedProxies: ['10.0.0.0/8', '::1', 'fd00::/8'] }).trustedProxies).toHaveLength(3);
  });

  it('keeps the peer for any other peer, without the header, or where a hop is no address', () => {
    expect(behind('192.0.2.1', xff('203.0.113.5'))).toBe('192.0.2.1');
    expect(behind('::ffff:192.0.2.1', {})).toBe('192.0.2.1');
    expect(behind('127.0.0.1', {})).toBe('127.0.0.1');
    expect(behind('127.0.0.1', xff('203.0.113.5, unknown'))).toBe('127.0.0.1');
    expect(behind('127.0.0.1', xff('unknown, 10.0.0.9'))).toBe('10.0.0.9');
    expect(behind(undefined, xff('203.0.113.5'))).toBe('');
    expect(clientAddresses([])('127.0.0.1', xff('203.0.113.5'))).toBe('127.0.0.1');
  });
});

describe('sendingPage (which page a browser says sent the request)', () => {
  it('reads Origin against the Host it was sent to, and Sec-Fetch-Site; a client that sends neither is no page', () => {
    const host = '127.0.0.1:4700';
    expect(sendingPage({ host })).toBeUndefined();
    expect(sendingPage({ host, origin: 'http://127.0.0.1:4700' })).toBe('this-site');
    // Behind a TLS proxy that keeps the Host, the page's scheme is not the hub's: the host is what names it.
    expect(sendingPage({ host: 'Hub.Example', origin: 'https://hub.example' })).toBe('this-site');
    expect(sendingPage({ host, origin: 'http://127.0.0.1:3000' })).toBe('other-site');
    expect(sendingPage({ host, origin: 'http://evil.example' })).toBe('other-site');
    expect(sendingPage({ host, origin: 'null' })).toBe('other-site');
    for (const site of ['cross-site', 'same-site']) expect(sendingPage({ host, 'sec-fetch-site': site, origin: 'http://127.0.0.1:4700' })).toBe('other-site');
    for (const site of ['same-origin', 'none']) expect(sendingPage({ host, 'sec-fetch-site': site })).toBe('this-site');
  });
});
