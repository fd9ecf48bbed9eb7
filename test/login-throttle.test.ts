import { describe, expect, it } from 'vitest';
import { addressKey, LoginThrottle, MAX_ADDRESSES } from '../server/transport/login-throttle.ts';
import { codeOfCall } from './helpers/errors.ts';

describe('login throttle', () => {
  it('refuses an address past its burst of unknown tokens until its allowance comes back, counting each refusal', () => {
    let now = 0;
    const throttle = new LoginThrottle({ burst: 2, perMinute: 6 }, () => now);
    throttle.failed('10.0.0.1');
    throttle.failed('10.0.0.1');
    // Six a minute, and the refusal itself counts: one more try in 20 s.
    expect(() => throttle.check('10.0.0.1', undefined)).toThrow('try again in 20 s');
    expect(codeOfCall(() => throttle.check('10.0.0.2', 'some-key'))).toBeUndefined();
    now += 20_000;
    expect(codeOfCall(() => throttle.check('10.0.0.1', undefined))).toBeUndefined();
    throttle.failed('10.0.0.1');
    expect(codeOfCall(() => throttle.check('10.0.0.1', undefined))).toBe('RATE_LIMITED');
  });

  it('lets in, while its address is throttled, a token that logged in from it before, until the refusals there run ten bursts below empty', () => {
    let now = 0;
    const throttle = new LoginThrottle({ burst: 2, perMinute: 60 }, () => now);
    throttle.passed('10.0.0.1', 'agent-key');
    throttle.failed('10.0.0.1');
    throttle.failed('10.0.0.1');
    expect(codeOfCall(() => throttle.check('10.0.0.1', 'agent-key'))).toBeUndefined();
    // Each refusal counts: a guesser who can tell a known token let in from a refused one gets 19 more tries.
    for (let i = 0; i < 18; i++) expect(codeOfCall(() => throttle.check('10.0.0.1', `guess-${i}`))).toBe('RATE_LIMITED');
    expect(codeOfCall(() => throttle.check('10.0.0.1', 'agent-key'))).toBeUndefined();
    expect(codeOfCall(() => throttle.check('10.0.0.1', 'guess-18'))).toBe('RATE_LIMITED');
    expect(codeOfCall(() => throttle.check('10.0.0.1', 'agent-key'))).toBe('RATE_LIMITED');
    // Then one guess a second (perMinute) keeps it refused; its own refusals do not (an agent reconnecting).
    now += 1_000;
    expect(codeOfCall(() => throttle.check('10.0.0.1', 'guess-19'))).toBe('RATE_LIMITED');
    for (let i = 0; i < 5; i++) expect(codeOfCall(() => throttle.check('10.0.0.1', 'agent-key'))).toBe('RATE_LIMITED');
    now += 1_001;
    expect(codeOfCall(() => throttle.check('10.0.0.1', 'agent-key'))).toBeUndefined();
  });

  it('counts an IPv4-mapped address as its IPv4 one, and an IPv6 address by its /64', () => {
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('192.168.1.9')).toBe('192.168.1.9');
    expect(addressKey('2001:db8:0:7::1')).toBe('2001:db8:0:7::/64');
    expect(addressKey('2001:0DB8:0000:0007:ffff:1:2:3')).toBe('2001:db8:0:7::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    const throttle = new LoginThrottle({ burst: 1, perMinute: 1 }, () => 0);
    throttle.failed('2001:db8:0:7::1');
    expect(codeOfCall(() => throttle.check('2001:db8:0:7:aaaa::2', undefined))).toBe('RATE_LIMITED');
    expect(codeOfCall(() => throttle.check('2001:db8:0:8::1', undefined))).toBeUndefined();
  });

  it('follows a bounded number of addresses, forgetting first those with their allowance whole', () => {
    let now = 0;
    const throttle = new LoginThrottle({ burst: 1, perMinute: 60 }, () => now);
    throttle.failed('10.9.9.9');
    for (let i = 0; i < MAX_ADDRESSES - 1; i++) throttle.passed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 'key');
    // Within the second: every address but the guesser's has its allowance whole.
    now = 500;
    throttle.passed('11.0.0.1', 'key');
    expect(throttle.size).toBeLessThanOrEqual(MAX_ADDRESSES);
    expect(codeOfCall(() => throttle.check('10.9.9.9', undefined))).toBe('RATE_LIMITED');
  });
});
