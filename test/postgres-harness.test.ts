import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, postmasterOf, postgresSkipReason, startPostgres, type PostgresServer } from './helpers/postgres.ts';

const missing = postgresSkipReason();
if (missing) console.warn(`PostgreSQL harness tests skipped: ${missing}`);

/** Runs `fn` with a client connected to `url`, closing it after. */
async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The postmaster's pid, from the first line of its pid file. */
function postmasterPid(server: PostgresServer): number {
  return postmasterOf(join(server.dir, 'data'))!;
}

describe.skipIf(missing !== undefined)('PostgreSQL test harness', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.destroy());

  it('starts a PostgreSQL 15 server on 127.0.0.1 that answers the postgres superuser', async () => {
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    const row = await withClient(server.url, async (client) => (await client.query('SELECT current_setting($1)::int AS version, current_user AS user', ['server_version_num'])).rows[0]);
    expect(row.version).toBeGreaterThanOrEqual(150000);
    expect(row.version).toBeLessThan(160000);
    expect(row.user).toBe('postgres');
  });

  it('gives each caller its own empty database on the shared server', async () => {
    const first = await server.newDatabase();
    const second = await server.newDatabase();
    expect(first).not.toBe(second);
    expect(new URL(first).port).toBe(String(server.port));

    await withClient(first, (client) => client.query('CREATE TABLE marks (name text); INSERT INTO marks VALUES ($$first$$)'));
    const inSecond = await withClient(second, async (client) => (await client.query(`SELECT to_regclass('marks') AS table`)).rows[0].table);
    expect(inSecond).toBeNull();
    const inFirst = await withClient(first, async (client) => (await client.query('SELECT name FROM marks')).rows);
    expect(inFirst).toEqual([{ name: 'first' }]);
  });

  it('refuses connections once stopped and keeps committed data when started again on the same port', async () => {
    const url = await server.newDatabase();
    await withClient(url, (client) => client.query('CREATE TABLE survivors (n int); INSERT INTO survivors SELECT generate_series(1, 1000)'));
    const open = new pg.Client({ connectionString: url });
    await open.connect();
    const lost = once(open, 'error');
    const pid = postmasterPid(server);

    await server.stop();
    // A connection open at the crash is cut, as a pool's would be.
    const [error] = await lost;
    expect(String(error)).toMatch(/Connection terminated unexpectedly/);
    expect(isAlive(pid)).toBe(false);
    await expect(withClient(url, (client) => client.query('SELECT 1'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(existsSync(join(server.dir, 'data', 'PG_VERSION'))).toBe(true);

    await server.start();
    const count = await withClient(url, async (client) => (await client.query('SELECT count(*)::int AS n FROM survivors')).rows[0].n);
    expect(count).toBe(1000);
    expect(postmasterPid(server)).not.toBe(pid);
  });

  it('runs a second server beside the first and leaves no process or directory once destroyed', async () => {
    const other = await startPostgres();
    expect(other.port).not.toBe(server.port);
    expect(other.dir).not.toBe(server.dir);
    await withClient(other.url, (client) => client.query('SELECT 1'));
    const pid = postmasterPid(other);
    expect(isAlive(pid)).toBe(true);

    await other.destroy();
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
    await expect(withClient(other.url, (client) => client.query('SELECT 1'))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // The first server is untouched.
    await withClient(server.url, (client) => client.query('SELECT 1'));
  });
});
