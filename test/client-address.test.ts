import { describe, expect, it } from 'vitest';
import { clientAddresses } from '../server/transport/client-address.ts';

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
