import { HubError } from '../../shared/errors.ts';
import { RateLimiter } from './rate-limit.ts';

/** How many unknown tokens a client address may present: `burst` at once, then `perMinute`. */
export interface LoginLimits {
  burst: number;
  perMinute: number;
}

/** Addresses followed at most: a guesser with many addresses must not grow the hub's memory. */
export const MAX_ADDRESSES = 10_000;

interface Client {
  failures: RateLimiter;
  /** Hashes of the tokens that logged in from this address: let in while it is throttled. */
  known: Set<string>;
}

/**
 * Throttles token guessing. Each client address (an IPv6 one by its /64 network) may present
 * `burst` unknown tokens at once, then `perMinute`; past that every login from it is refused
 * with RATE_LIMITED until it has allowance again, except with a token that has already logged in
 * from it: a guesser does not lock out the agents beside it, nor learn anything from a refusal.
 */
export class LoginThrottle {
  private readonly clients = new Map<string, Client>();

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Refuses (RATE_LIMITED) a login from `address` with the token of hash `key` while the address is throttled, unless that token logged in from it before. */
  check(address: string, key: string | undefined): void {
    const client = this.clients.get(addressKey(address));
    if (!client || (key !== undefined && client.known.has(key))) return;
    const waitMs = client.failures.waitMs();
    if (waitMs > 0) throw new HubError('RATE_LIMITED', `too many failed logins from ${address}; try again in ${Math.ceil(waitMs / 1000)} s`);
  }

  /** Counts an unknown token presented from `address`. */
  failed(address: string): void {
    this.client(address).failures.take();
  }

  /** Remembers that the token of hash `key` logged in from `address`. */
  passed(address: string, key: string): void {
    this.client(address).known.add(key);
  }

  /** How many addresses are followed (for tests of the bound). */
  get size(): number {
    return this.clients.size;
  }

  /** The address's record, made if new, and moved last: the most recently seen go last when room is made. */
  private client(address: string): Client {
    const key = addressKey(address);
    let client = this.clients.get(key);
    if (client) this.clients.delete(key);
    else {
      if (this.clients.size >= MAX_ADDRESSES) this.makeRoom();
      client = { failures: new RateLimiter(this.limits.perMinute / 60, this.limits.burst, this.now), known: new Set() };
    }
    this.clients.set(key, client);
    return client;
  }

  /**
   * Forgets a tenth of the addresses: first those whose allowance is whole again (a fresh record
   * would be the same, but for the tokens it let in), then the least recently seen. A tenth at a
   * time, so that the scan costs little per login.
   */
  private makeRoom(): void {
    const target = this.clients.size - Math.ceil(MAX_ADDRESSES / 10);
    for (const [key, client] of this.clients) {
      if (this.clients.size <= target) return;
      if (client.failures.full()) this.clients.delete(key);
    }
    for (const key of this.clients.keys()) {
      if (this.clients.size <= target) return;
      this.clients.delete(key);
    }
  }
}

/**
 * The key an address is counted under: an IPv4 address as it is (IPv4-mapped IPv6 too), an IPv6
 * address by its /64 network, since one host usually holds a whole /64 and could rotate within it.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.replace(/%.*$/, '').toLowerCase().split('::');
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const front = groups(head);
  const back = groups(tail);
  const all = tail === undefined ? front : [...front, ...Array<string>(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((group) => (Number.parseInt(group, 16) || 0).toString(16))
    .join(':')}::/64`;
}
