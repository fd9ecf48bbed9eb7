import { HubError } from '../../shared/errors.ts';
import type { SendingPage } from './client-address.ts';

/** How many unknown tokens a client address may present: `burst` at once, then `perMinute`. */
export interface LoginLimits {
  burst: number;
  perMinute: number;
}

/**
 * The level a refused login is logged at: an address throttled for guessing is refused at every
 * try, which would flood the log; the unknown tokens it presented first were each logged at warn.
 */
export function refusalLevel(code: string): 'warn' | 'debug' {
  return code === 'RATE_LIMITED' ? 'debug' : 'warn';
}

/** Addresses followed at most: a guesser with many addresses must not grow the hub's memory. */
export const MAX_ADDRESSES = 10_000;

/**
 * How far below empty a throttled address's allowance goes before the tokens that logged in from
 * it are refused too, in bursts: each login it is refused meanwhile counts as a failure, so a
 * guesser who could tell a token let in from one refused gets this many tries, then `perMinute`.
 */
const KNOWN_TOKEN_BURSTS = 10;

interface Client {
  /** Unknown tokens this address may still present: at most `burst`, refilled `perMinute`; below 1 it is throttled. */
  allowance: number;
  /** When `allowance` was last brought up to date (the throttle's clock). */
  at: number;
  /** Hashes of the tokens that logged in from this address: let in while it is throttled, up to a point. */
  known: Set<string>;
}

/**
 * Throttles token guessing. Each client address (an IPv6 one by its /64 network) may present
 * `burst` unknown tokens at once, then `perMinute`; past that every login from it is refused
 * with RATE_LIMITED, whatever its token. A token that has already logged in from the
 * address is still let in, so that a guesser does not lock out the agents beside it; but every
 * other login refused meanwhile with a token not in force counts as a failure, and ten bursts below
 * empty the known tokens are refused too: telling them apart from the rest gives a guesser that many
 * tries, then `perMinute`.
 */
export class LoginThrottle {
  private readonly clients = new Map<string, Client>();
  private readonly perMs: number;
  private readonly floor: number;

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = limits.perMinute / 60_000;
    this.floor = -KNOWN_TOKEN_BURSTS * limits.burst;
  }

  /**
   * Refuses (RATE_LIMITED) a login from `address` with the token of hash `key` while the address
   * is throttled, unless that token logged in from it before and the address is not far below empty.
   * `inForce`: whether the token is one of the hub's (its refusal is then not counted).
   */
  check(address: string, key: string | undefined, page?: SendingPage, inForce = false): void {
    const client = this.clients.get(bucketKey(address, page));
    if (!client || this.refill(client) >= 1) return;
    const known = key !== undefined && client.known.has(key);
    if (known && client.allowance > this.floor + 1) return;
    // A token in force refused is no guess. Counted, the clients coming back after a restart (which forgets
    // the known tokens) would keep their address throttled for good, each retry a failure. The price: above
    // the floor, a wait that does not grow tells a guesser its token is in force (README says so).
    if (!known && !inForce) this.charge(client);
    const waitMs = ((known ? this.floor + 1 : 1) - client.allowance) / this.perMs;
    throw new HubError('RATE_LIMITED', `too many failed logins from ${address}${page ? ` by ${page === 'other-site' ? 'pages of other sites' : 'browser pages'}` : ''}; try again in ${Math.max(1, Math.ceil(waitMs / 1000))} s`);
  }

  /** Counts an unknown token presented from `address`. */
  failed(address: string, page?: SendingPage): void {
    this.charge(this.client(bucketKey(address, page)));
  }

  /** Remembers that the token of hash `key` logged in from `address`. */
  passed(address: string, key: string, page?: SendingPage): void {
    this.client(bucketKey(address, page)).known.add(key);
  }

  /**
   * Forgets the tokens that logged in that `inForce` no longer holds (a reload revoked them), and
   * the addresses left with none whose allowance is whole (a fresh record would be the same):
   * kept, every token ever created and used would stay in memory for the life of the hub.
   */
  forgetRevoked(inForce: (key: string) => boolean): void {
    for (const [address, client] of this.clients) {
      for (const key of client.known) if (!inForce(key)) client.known.delete(key);
      if (client.known.size === 0 && this.refill(client) >= this.limits.burst) this.clients.delete(address);
    }
  }

  /** How many addresses are followed (for tests of the bound). */
  get size(): number {
    return this.clients.size;
  }

  /** The address's record, made if new, and moved last: the most recently seen go last when room is made. */
  private client(key: string): Client {
    let client = this.clients.get(key);
    if (client) this.clients.delete(key);
    else {
      if (this.clients.size >= MAX_ADDRESSES) this.makeRoom();
      client = { allowance: this.limits.burst, at: this.now(), known: new Set() };
    }
    this.clients.set(key, client);
    return client;
  }

  /** The allowance now, refilled for the time since it was last brought up to date. */
  private refill(client: Client): number {
    const now = this.now();
    client.allowance = Math.min(this.limits.burst, client.allowance + (now - client.at) * this.perMs);
    client.at = now;
    return client.allowance;
  }

  /** Takes one failure off the allowance, down to the floor. */
  private charge(client: Client): void {
    client.allowance = Math.max(this.floor, this.refill(client) - 1);
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
      if (this.refill(client) >= this.limits.burst) this.clients.delete(key);
    }
    for (const key of this.clients.keys()) {
      if (this.clients.size <= target) return;
      this.clients.delete(key);
    }
  }
}

/**
 * What a login is counted under: its address, and apart the logins a browser says a page sent,
 * those of pages of other sites apart again. A web page that guesses tokens from the machine of
 * the agents then throttles no agent or script there; one of another site, not the hub's own
 * dashboard either (a page whose name an attacker points at the hub's address, DNS rebinding,
 * passes for the hub's own). A client that forges the headers gains two more buckets, no more.
 */
function bucketKey(address: string, page: SendingPage | undefined): string {
  return page ? `${addressKey(address)} ${page}` : addressKey(address);
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
