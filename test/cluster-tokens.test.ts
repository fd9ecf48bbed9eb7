import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectMonitor, type MonitorClient } from '../client-sdk/index.ts';
import { createHub, type RunningHub } from '../server/index.ts';
import { status } from '../server/cli/status.ts';
import { tokens } from '../server/cli/tokens.ts';
import { loadOrCreateClusterTokens, readClusterTokens, saveClusterTokens } from '../server/store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION, ensureSchema } from '../server/store/postgres/schema.ts';
import type { TokenGrant } from '../shared/schemas/tokens.ts';
import { codeOf } from './helpers/errors.ts';
import { GRANTS, tempDir, TOKENS } from './helpers/hub.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from './helpers/postgres.ts';
import { untilTrue } from './helpers/wait.ts';

const missing = postgresSkipReason();
if (missing) console.warn(`cluster token tests skipped: ${missing}`);

/** Starts a cluster node on `url` with no tokens of its own; closed when the test ends. */
async function startNode(url: string, nodeId: string): Promise<RunningHub> {
  const hub = await createHub({ port: 0, postgres: url, nodeId, dataDir: tempDir(), logLevel: 'silent' });
  onTestFinished(() => hub.close());
  return hub;
}

/** Two nodes of a fresh cluster, started together. */
async function startCluster(server: PostgresServer): Promise<{ url: string; nodes: [RunningHub, RunningHub] }> {
  const url = await server.newDatabase();
  const nodes = await Promise.all([startNode(url, 'node-a'), startNode(url, 'node-b')]);
  return { url, nodes };
}

/** Runs `switchboard tokens` in this process, keeping what it prints out of the test output. */
async function tokensCli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const printed = { stdout: '', stderr: '' };
  const capture = (stream: 'stdout' | 'stderr') =>
    vi.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => ((printed[stream] += String(chunk)), true));
  const spies = [capture('stdout'), capture('stderr')];
  try {
    await tokens(args);
  } finally {
    spies.forEach((spy) => spy.mockRestore());
  }
  return printed;
}

/** A monitor connected with `token`, and a promise of the reason its connection ends (rejected, naming the node, if it does not within 10 s). */
async function watch(hub: RunningHub, token: string): Promise<{ client: MonitorClient; closed: Promise<string> }> {
  const client = await connectMonitor({ url: hub.url, token });
  onTestFinished(() => client.close());
  const closed = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the monitor on ${hub.options.nodeId} is still connected after 10 s`)), 10_000);
    client.connection.socket.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
  // Awaited by the test, or left unawaited when it failed earlier: a rejection then is not a second failure.
  closed.catch(() => undefined);
  return { client, closed };
}

/** A pool on the cluster's database, ended when the test ends. */
function database(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  onTestFinished(() => pool.end());
  return pool;
}

/** A client connected to the cluster's database, ended when the test ends. */
async function connected(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  onTestFinished(() => client.end());
  return client;
}

/** Resolves once the number `sql` answers (as `n`) satisfies `predicate`, asked every few ms; rejects after 10 s naming `what`. */
async function untilQuery(db: pg.Pool, sql: string, predicate: (n: number) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!predicate((await db.query<{ n: number }>(sql)).rows[0]!.n)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const tokenOf = (grants: readonly TokenGrant[], role: TokenGrant['role']) => grants.find((g) => g.role === role)!.token;

describe.skipIf(missing !== undefined)('tokens of a cluster', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.destroy());

  it('two nodes started together generate one set of tokens, which both accept', async () => {
    const { url, nodes } = await startCluster(server);
    const [a, b] = nodes;
    expect(a.tokens.map((g) => g.role).sort()).toEqual(['admin', 'agent', 'monitor']);
    expect(b.tokens).toEqual(a.tokens);
    expect([a.tokensCreated, b.tokensCreated].filter(Boolean)).toHaveLength(1);
    expect((await tokensCli('list', '--postgres', url)).stdout).toContain(tokenOf(a.tokens, 'admin'));
    for (const hub of nodes) {
      const watcher = await connectMonitor({ url: hub.url, token: tokenOf(a.tokens, 'monitor') });
      watcher.close();
    }
  });

  it('of many nodes reading the tokens of a new cluster at the same moment, one stores a generated set and all get it', async () => {
    const url = await server.newDatabase();
    const db = database(url);
    await ensureSchema(db);
    const nodes = await Promise.all(Array.from({ length: 8 }, () => connected(url)));
    // Holding off every insert until all eight have found no tokens, so that all eight try to store theirs.
    const gate = await db.connect();
    await gate.query('BEGIN');
    await gate.query('LOCK TABLE sb_tokens IN SHARE MODE');
    const loading = Promise.all(nodes.map((client) => loadOrCreateClusterTokens(client, DEFAULT_PARTITION)));
    await untilQuery(db, "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO sb_tokens%'", (n) => n === 8, 'eight inserts waiting');
    await gate.query('COMMIT');
    gate.release();
    const results = await loading;
    expect(results.filter((r) => r.created)).toHaveLength(1);
    for (const { grants } of results) expect(grants).toEqual(results[0]!.grants);
  });

  it('a monitor token revoked with `switchboard tokens revoke` closes its connections on every node and is refused after', async () => {
    const { url, nodes } = await startCluster(server);
    const monitorToken = tokenOf(nodes[0].tokens, 'monitor');
    const watchers = await Promise.all(nodes.map((hub) => watch(hub, monitorToken)));
    const admins = await Promise.all(nodes.map((hub) => watch(hub, tokenOf(hub.tokens, 'admin'))));

    const { stderr } = await tokensCli('revoke', monitorToken, '--postgres', url);
    expect(stderr).toContain('revoked the monitor token default-monitor');
    expect(await Promise.all(watchers.map((w) => w.closed))).toEqual(['io server disconnect', 'io server disconnect']);

    for (const hub of nodes) {
      expect(await codeOf(connectMonitor({ url: hub.url, token: monitorToken }))).toBe('UNAUTHENTICATED');
      expect(hub.tokens.map((g) => g.role).sort()).toEqual(['admin', 'agent']);
    }
    // Connections made with tokens still in force stay.
    expect(admins.map((a) => a.client.connection.socket.connected)).toEqual([true, true]);
    expect((await readClusterTokens(database(url), DEFAULT_PARTITION))?.map((g) => g.role).sort()).toEqual(['admin', 'agent']);
  });

  it('a node that lost PostgreSQL keeps running, and applies a revocation made once it is back', async () => {
    const { url, nodes } = await startCluster(server);
    const monitorToken = tokenOf(nodes[0].tokens, 'monitor');
    const watchers = await Promise.all(nodes.map((hub) => watch(hub, monitorToken)));
    await server.stop();
    await server.start();
    // Made as soon as PostgreSQL is back: a node still reconnecting misses the notification and reads the change once it listens again.
    await tokensCli('revoke', monitorToken, '--postgres', url);
    expect(await Promise.all(watchers.map((w) => w.closed))).toEqual(['io server disconnect', 'io server disconnect']);
    for (const hub of nodes) expect(await codeOf(connectMonitor({ url: hub.url, token: monitorToken }))).toBe('UNAUTHENTICATED');
  });

  it('a token created with `switchboard tokens create --postgres` works on every node at once', async () => {
    const { url, nodes } = await startCluster(server);
    const created = (await tokensCli('create', '--role', 'admin', '--name', 'ops', '--postgres', url)).stdout.trim();
    for (const hub of nodes) await untilTrue(() => hub.tokens.some((g) => g.token === created), `${hub.options.nodeId} to apply the new token`);
    // Admin tokens may monitor, on a follower as well as on the leader.
    for (const hub of nodes) (await connectMonitor({ url: hub.url, token: created })).close();
  });

  it('`switchboard status --url NODE` with SWITCHBOARD_POSTGRES exported (as the README runs it) takes a token of the cluster', async () => {
    const { url, nodes } = await startCluster(server);
    vi.stubEnv('SWITCHBOARD_POSTGRES', url);
    vi.stubEnv('SWITCHBOARD_TOKEN', '');
    vi.stubEnv('SWITCHBOARD_TOKENS', '');
    vi.stubEnv('SWITCHBOARD_TOKENS_FILE', '');
    vi.stubEnv('SWITCHBOARD_DATA_DIR', tempDir());
    onTestFinished(() => void vi.unstubAllEnvs());
    const printed = { stdout: '' };
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((printed.stdout += String(chunk)), true));
    try {
      await status(['--json', '--url', nodes[1].url]);
    } finally {
      spy.mockRestore();
    }
    expect(JSON.parse(printed.stdout)).toMatchObject({ cluster: { nodeId: 'node-b' } });
  });

  it('a node given its own tokens uses them, and leaves the cluster’s alone', async () => {
    const url = await server.newDatabase();
    const hub = await createHub({ port: 0, postgres: url, nodeId: 'own-tokens', tokens: GRANTS, dataDir: tempDir(), logLevel: 'silent' });
    onTestFinished(() => hub.close());
    expect(hub.tokens).toEqual(GRANTS);
    expect(await readClusterTokens(database(url), DEFAULT_PARTITION)).toBeUndefined();
    (await connectMonitor({ url: hub.url, token: TOKENS.monitor })).close();
  });

  it('a bad token list is refused, and no node changes its tokens', async () => {
    const { url, nodes } = await startCluster(server);
    const before = nodes[0].tokens;
    const pool = database(url);
    expect(await codeOf(saveClusterTokens(pool, DEFAULT_PARTITION, []))).toBe('VALIDATION');
    expect(await codeOf(saveClusterTokens(pool, DEFAULT_PARTITION, [{ token: 'short', role: 'root' } as unknown as TokenGrant]))).toBe('VALIDATION');
    await expect(tokensCli('revoke', 'sb_monitor_no-such-token', '--postgres', url)).rejects.toThrow(/no such token in the cluster's PostgreSQL/);
    const admin = tokenOf(before, 'admin');
    await expect(tokensCli('revoke', admin, '--postgres', url)).rejects.toThrow(/last admin token/);
    expect(await readClusterTokens(pool, DEFAULT_PARTITION)).toEqual(before);
    // reloadTokens reads them from PostgreSQL again, and finds the same three.
    for (const hub of nodes) expect(await hub.reloadTokens()).toBe(3);

    // A good change after them reaches every node, and is all that changed.
    const agent = tokenOf(before, 'agent');
    await tokensCli('revoke', agent, '--postgres', url);
    for (const hub of nodes) await untilTrue(() => hub.tokens.length === 2, `${hub.options.nodeId} to apply the revocation`);
    for (const hub of nodes) expect(hub.tokens).toEqual(before.filter((g) => g.token !== agent));
  });
});
