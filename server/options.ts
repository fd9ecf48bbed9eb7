import * as z from 'zod';
import { TokenList } from '../shared/schemas/tokens.ts';
import { hostEntry } from './transport/allowed-hosts.ts';
import { proxyEntry } from './transport/client-address.ts';

/** Every option of createHub() with its default; the README's configuration table is this schema. */
export const HubOptions = z.strictObject({
  /** TCP port; 0 picks a free one. */
  port: z.number().int().min(0).max(65_535).default(4700),
  /** Interface to listen on (an empty one would listen on every interface). */
  host: z.string().min(1).default('127.0.0.1'),
  /** Where the journal, snapshot, lock and generated tokens live. */
  dataDir: z.string().min(1).default('./.switchboard'),
  /**
   * Access tokens; when absent they come from `tokensFile`, or are read from (or generated into)
   * `<dataDir>/tokens.json`, or on a cluster node (`postgres`) the cluster's PostgreSQL.
   */
  tokens: TokenList.optional(),
  /** A JSON file holding the token list (same shape as `tokens`). */
  tokensFile: z.string().min(1).optional(),
  /** fdatasync the journal after every batch (survives power loss; slower). */
  fsync: z.boolean().default(false),
  /**
   * Start although a journal record other than the newest one's tail is damaged: the state is
   * rebuilt from the records before it, and it and every record after it are deleted (a warning
   * says exactly what). For one start after damage, never as a standing setting.
   */
  truncateDamagedJournal: z.boolean().default(false),
  /** Journal size that triggers a background snapshot. */
  snapshotAfterBytes: z.number().int().min(1024).default(32 * 1024 * 1024),
  /**
   * A snapshot also waits until the journal holds this multiple of the last snapshot's size, so
   * that the snapshot work per change does not grow with the state; start-up replays at most that
   * much journal more. 0: `snapshotAfterBytes` alone.
   */
  snapshotJournalRatio: z.number().min(0).max(100).default(1),
  /** Largest socket.io message accepted, in bytes; larger ones close the connection. */
  maxHttpBufferSize: z.number().int().min(1024).default(1024 * 1024),
  /**
   * Bytes of answers (and pushes) a connection may leave unread: past that the hub stops reading its
   * requests until it catches up (over long-polling it closes it), past four times that it closes
   * it; so a client that asks and never reads cannot fill the hub's memory.
   */
  maxUnreadBytes: z.number().int().min(1024 * 1024).default(32 * 1024 * 1024),
  /** Per-connection request rate limit (token bucket). */
  rateLimit: z.strictObject({ perSecond: z.number().positive().default(5000), burst: z.number().int().positive().default(10_000) }).default({
    perSecond: 5000,
    burst: 10_000,
  }),
  /**
   * Unknown tokens one client address (an IPv6 one by its /64) may present: `burst` at once, then
   * `perMinute`; past that its logins are refused (RATE_LIMITED) until it has allowance again,
   * except with a token that already logged in from it. Behind a proxy, see `trustedProxies`.
   */
  failedLogins: z.strictObject({ burst: z.number().int().min(1).default(20), perMinute: z.number().positive().max(60_000).default(10) }).default({
    burst: 20,
    perMinute: 10,
  }),
  /**
   * Addresses (or subnets) of reverse proxies in front of the hub: a request from one comes from the
   * address its `X-Forwarded-For` names (the right-most that is not itself one of these), for
   * `failedLogins` and the logs. Without it, clients behind a proxy share the proxy's address.
   */
  trustedProxies: z.array(z.string().refine((entry) => proxyEntry(entry) !== undefined, { message: 'must be an IP address or a subnet (address/prefix length)' })).default([]),
  /**
   * Host names (in the Host header) the hub answers to besides IP addresses, `localhost`, `*.localhost`,
   * the `host` it listens on, this machine's name and `advertiseUrl`'s host: others are refused, so
   * that a page whose name points at the hub (DNS rebinding) is no page of the hub. `.example.com`
   * is it and its subdomains; `'*'` answers to any name. Not given: checked when the hub listens on
   * a loopback address (the default), any name otherwise (reached over the network by names it cannot know).
   */
  allowedHosts: z
    .union([
      z.literal('*'),
      z.array(z.string().refine(hostEntry, { message: "must be a host name without scheme or port (hub.example.com, or .example.com for it and its subdomains), an IP address, or '*'" })),
    ], { error: "must be a list of host names, or '*'" })
    .optional(),
  /** How many recent values each KPI keeps. */
  kpiHistoryLimit: z.number().int().min(1).max(100_000).default(1000),
  /** How many previous versions each data reference keeps. */
  dataHistoryLimit: z.number().int().min(1).max(10_000).default(20),
  /**
   * Folders whose files the hub may read to validate data references (symlinks and `..` are
   * resolved first, so nothing outside them is read). Default: the working directory and dataDir.
   */
  dataRoots: z.array(z.string().min(1)).min(1).max(100).optional(),
  /** The `producer` URI of exported OpenLineage events. */
  openLineageProducer: z.url().default('urn:switchboard:hub:0.1.0'),
  /** Waiting this long lifts a queued work order by one priority level (so nothing starves). */
  agingMs: z.number().int().min(1).default(60_000),
  /** How long a disconnected agent keeps its running work before it is reassigned. */
  graceMs: z.number().int().min(0).default(10_000),
  /** How long an offline agent stays in the pool; then it is forgotten (registering again starts a fresh record). */
  forgetAgentsAfterMs: z.number().int().min(0).default(86_400_000),
  /** Retry backoff: backoffBaseMs × 2^(attempt − 1), at most backoffMaxMs. */
  backoffBaseMs: z.number().int().min(0).default(1000),
  backoffMaxMs: z.number().int().min(0).default(60_000),
  /**
   * How long an order every capable agent declined (or let its offer lapse) waits before its
   * declines are forgotten and it is offered again; 0 or null: until an operator retries it.
   */
  declinedRetryMs: z.number().int().min(0).nullable().default(60_000),
  /** How often offer deadlines, leases, grace periods, retries and timeouts are checked. */
  sweepIntervalMs: z.number().int().min(10).max(60_000).default(250),
  /** How long an ended workflow stays in memory before it is written to the archive and leaves memory. */
  keepFinishedMs: z.number().int().min(0).default(10 * 60_000),
  /** Archived workflows that ended longer ago than this are deleted (checked each minute); null keeps them forever. */
  retentionMs: z.number().int().min(1).nullable().default(null),
  /** Monitors get the changes of each document coalesced over this many ms (0: every tick). */
  patchIntervalMs: z.number().int().min(0).max(10_000).default(25),
  /** Versions of history kept per document so a reconnecting monitor gets only what it missed. */
  resumeVersions: z.number().int().min(0).max(1_000_000).default(1000),
  /** A monitor with more packets than this waiting unread (looked at before each broadcast) is dropped from the stream and told to resync. */
  maxQueuedPackets: z.number().int().min(1).default(256),
  /**
   * Run as a node of a cluster that keeps its journal, snapshots and archive in this PostgreSQL
   * (a connection string, e.g. postgres://switchboard@db:5432/switchboard); absent: a single hub on
   * the embedded store.
   */
  postgres: z.string().min(1).optional(),
  /** This node's name in a cluster (default: host:port it listens on). */
  nodeId: z.string().min(1).max(200).regex(/^[\w.:@-]+$/, 'letters, digits and . : @ _ - only').optional(),
  /** The URL clients reach this node at, given to them by followers (default: the URL it listens on). */
  advertiseUrl: z
    // Aborting: 'hub-a:4701' reads as the scheme hub-a: with the path 4701, which the path check would name too.
    .url({ protocol: /^(https?|wss?)$/, error: 'a URL with an http:// or https:// scheme, e.g. http://hub-a.internal:4701', abort: true })
    // The SDK refuses a hub URL with a path (socket.io would read it as a namespace): followers' clients could not follow it.
    .refine((url) => ['', '/'].includes(new URL(url).pathname), 'no path: clients reach the hub at the root of its URL, e.g. http://hub-a.internal:4701')
    .optional(),
  /** How long the cluster's leadership lease lasts unless renewed; a follower takes over once it has expired. */
  leaseMs: z.number().int().min(500).max(600_000).default(5000),
  /** How often the leader renews its lease (less than leaseMs). */
  leaseRenewMs: z.number().int().min(50).max(60_000).default(1000),
  /** How often a follower looks at the lease (the journal wakes it on its own). */
  leaseCheckMs: z.number().int().min(50).max(60_000).default(1000),
  /** Log level; logs are JSON lines on stdout. */
  logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
})
  // Both given, tokensFile would be ignored (and so would its reloads): say so rather than guess.
  .refine((options) => !(options.tokens && options.tokensFile), { message: 'give tokens or tokensFile, not both', path: ['tokensFile'] })
  .refine((options) => options.leaseRenewMs < options.leaseMs, { message: 'leaseRenewMs must be less than leaseMs', path: ['leaseRenewMs'] })
  .refine((options) => options.backoffBaseMs <= options.backoffMaxMs, { message: 'backoffBaseMs must be at most backoffMaxMs', path: ['backoffBaseMs'] });

export type HubOptionsInput = z.input<typeof HubOptions>;
export type ResolvedHubOptions = z.output<typeof HubOptions>;
