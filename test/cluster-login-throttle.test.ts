import { createHash } from 'node:crypto';
import pg from 'pg';
import { io } from 'socket.io-client';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { LoginThrottle } from '../server/transport/login-throttle.ts';
import { readClusterTokens, saveClusterTokens } from '../server/store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION, ensureSchema } from '../server/store/postgres/schema.ts';
import { FAST_LEASE, leaderAndFollower } from './helpers/cluster.ts';
import { GRANTS, TOKENS } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

/** Connects to `url`'s /monitor with `token` (as a page of `origin` when given): 'ok', or the refusal's message. */
async function login(url: string, token: string, origin?: string): Promise<string> {
  const socket = io(`${url}/monitor`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, ...(origin ? { extraHeaders: { origin } } : {}) });
  try {
    return await new Promise<string>((resolve) => socket.once('connect', () => resolve('ok')).once('connect_error', (error) => resolve(error.message)));
  } finally {
    socket.disconnect();
  }
}

describe.skipIf(!!skip)('the login throttle on the nodes of a cluster', () => {
  it("counts another site's pages apart on a follower, and every node forgets a token the cluster revoked", async () => {
    // The instances of the throttle, caught at their first check: one per node.
    const throttles = new Set<LoginThrottle>();
    const check = LoginThrottle.prototype.check;
    vi.spyOn(LoginThrottle.prototype, 'check').mockImplementation(function (this: LoginThrottle, ...args) {
      throttles.add(this);
      return check.apply(this, args);
    });
    const url = await postgres().newDatabase();
    const pool = new pg.Pool({ connectionString: url });
    onTestFinished(() => pool.end());
    // The cluster's tokens (the nodes are given none of their own): the test's.
    await ensureSchema(pool);
    await saveClusterTokens(pool, DEFAULT_PARTITION, GRANTS);
    const options = { postgres: url, tokens: undefined, failedLogins: { burst: 3, perMinute: 1 }, ...FAST_LEASE };
    const { leader, follower } = await leaderAndFollower(options);

    // A page of another site guessing on the follower: throttled, and the scripts there are not.
    for (let i = 0; i < 3; i++) expect(await login(follower.url, `guess-${i}-xxxx`, 'http://evil.example')).toMatch(/unknown token/);
    expect(await login(follower.url, 'guess-9-xxxx', 'http://evil.example')).toMatch(/too many failed logins .* by pages of other sites/);
    expect(await login(follower.url, TOKENS.monitor)).toBe('ok');

    // A token of the cluster, used at both nodes, then revoked: no node keeps it.
    const before = (await readClusterTokens(pool, DEFAULT_PARTITION))!;
    const job = { token: 'job-token-1', role: 'monitor' as const, name: 'job' };
    await saveClusterTokens(pool, DEFAULT_PARTITION, [...before, job]);
    // Whether a node's throttle remembers the job's token as one that logged in (it keeps tokens by their hash).
    const jobKey = createHash('sha256').update(job.token).digest('base64');
    const knows = (throttle: LoginThrottle) => [...(throttle as unknown as { clients: Map<string, { known: Set<string> }> }).clients.values()].some((client) => client.known.has(jobKey));
    // Read at each node now (a reload reads the cluster's tokens), not at its notification: a login before would count as a guess.
    for (const node of [leader, follower]) {
      await node.reloadTokens();
      expect(await login(node.url, job.token)).toBe('ok');
    }
    expect([...throttles].filter(knows)).toHaveLength(2);
    await saveClusterTokens(pool, DEFAULT_PARTITION, before);
    await untilTrue(() => [...throttles].filter(knows).length === 0, 'the revoked token forgotten at every node');
    expect(await login(follower.url, job.token)).toMatch(/unknown token/);
  }, 20_000);
});
