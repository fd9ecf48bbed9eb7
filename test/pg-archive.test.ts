import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { summarize } from '../server/domain/workflows/summary.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { PgArchive } from '../server/store/postgres/pg-archive.ts';
import { ensureSchema } from '../server/store/postgres/schema.ts';
import type { Fence } from '../server/store/postgres/pg-journal.ts';
import { bigWorkflow, toArchive, workflow } from './helpers/archived-workflows.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from './helpers/postgres.ts';

describe.skipIf(!!postgresSkipReason())('the PostgreSQL archive', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server?.destroy());

  /** A pool on a new database with the cluster's tables, ended when the test ends. */
  async function database(): Promise<pg.Pool> {
    const pool = new pg.Pool({ connectionString: await server.newDatabase() });
    onTestFinished(() => pool.end());
    await ensureSchema(pool);
    return pool;
  }

  /** The lease `fence` names, taken in `pool`'s database for `partition` (or moved on to its epoch). */
  async function lease(pool: pg.Pool, partition: string, fence: Fence): Promise<void> {
    await pool.query(
      `INSERT INTO sb_lease (partition, owner, url, epoch, expires_at) VALUES ($1, $2, 'http://127.0.0.1:1', $3, now() + interval '1 hour')
       ON CONFLICT (partition) DO UPDATE SET owner = EXCLUDED.owner, epoch = EXCLUDED.epoch`,
      [partition, fence.owner, fence.epoch],
    );
  }

  /** The archive of `partition` in `pool`'s database, writing under `fence` (taken here), once its headers are read. */
  async function opened(pool: pg.Pool, partition = 'p1', fence: Fence = { owner: 'leader', epoch: 1 }, warnings: string[] = []): Promise<PgArchive> {
    await lease(pool, partition, fence);
    const archive = await PgArchive.open(pool, partition, { fence: () => fence, onWarning: (message) => warnings.push(message) });
    await archive.ready();
    return archive;
  }

  async function put(archive: PgArchive, document: Workflow, v: number, archivedAt = 5000): Promise<void> {
    await archive.put(toArchive(document, v, archivedAt), summarize(document, v, archivedAt));
  }

  it('reads back what it wrote and its summary, lists headers by creation, and a workflow archived again replaces its row', async () => {
    const pool = await database();
    const archive = await opened(pool);
    for (const [index, id] of ['wf-a', 'wf-b', 'wf-c'].entries()) await put(archive, workflow(id, 1000 - index), index + 1);
    expect(archive.headers().map((h) => h.id)).toEqual(['wf-c', 'wf-b', 'wf-a']);
    expect([archive.size, archive.has('wf-b'), archive.has('wf-z')]).toEqual([3, true, false]);
    expect(await archive.read('wf-b')).toEqual({ v: 2, archivedAt: 5000, workflow: workflow('wf-b', 999) });
    expect(await archive.readSummary('wf-b')).toEqual(summarize(workflow('wf-b', 999), 2, 5000));
    expect([await archive.read('wf-z'), await archive.readSummary('wf-z')]).toEqual([undefined, undefined]);

    await put(archive, workflow('wf-b', 999), 7, 6000);
    expect(archive.size).toBe(3);
    expect(archive.header('wf-b')).toMatchObject({ v: 7, archivedAt: 6000 });
    expect((await archive.read('wf-b'))?.v).toBe(7);
    expect((await pool.query("SELECT count(*)::int AS rows FROM sb_archive WHERE workflow_id = 'wf-b'")).rows).toEqual([{ rows: 1 }]);
    // Another partition of the same table holds none of them.
    const other = await opened(pool, 'p2');
    expect([other.size, other.has('wf-b'), await other.read('wf-b')]).toEqual([0, false, undefined]);
  });

  it('lists headers created in one millisecond by id, as written and as read again', async () => {
    const pool = await database();
    const archive = await opened(pool);
    // Archived out of id order; 'wf-B' < 'wf-a' in JavaScript's order, which the table's must match.
    for (const id of ['wf-c', 'wf-a', 'wf-B', 'wf-b']) await put(archive, workflow(id, 1000), 1);
    await put(archive, workflow('wf-0', 999), 1);
    const expected = ['wf-0', 'wf-B', 'wf-a', 'wf-b', 'wf-c'];
    expect(archive.headers().map((h) => h.id)).toEqual(expected);
    expect((await opened(pool)).headers().map((h) => h.id)).toEqual(expected);
  });

  it('reads back a big workflow equal to what was archived, its keys in the same order', async () => {
    const archive = await opened(await database());
    const document = bigWorkflow('wf-big', 6000);
    const expected = JSON.stringify(document);
    // Bigger than a part of a read (256 KB), so it comes back in several.
    expect(expected.length).toBeGreaterThan(1_000_000);
    await put(archive, document, 9);
    const read = await archive.read('wf-big');
    expect(read).toEqual({ v: 9, archivedAt: 5000, workflow: document });
    expect(JSON.stringify(read!.workflow)).toBe(expected);
  });

  it('archives a workflow whose query holds what jsonb cannot (NUL, a lone surrogate), and lists it with that query, as written and as read again', async () => {
    const pool = await database();
    const archive = await opened(pool);
    // Text the hub accepts and journals; PostgreSQL's jsonb refuses \u0000 and an unpaired surrogate.
    const queries = { 'wf-nul': 'a\u0000b', 'wf-lone': 'x\ud800 y\udc00 😀', 'wf-plain': 'plain \\u0000 text' };
    for (const [id, userQuery] of Object.entries(queries)) await put(archive, { ...workflow(id, 1000), userQuery }, 1);
    const reopened = await opened(pool);
    for (const [id, userQuery] of Object.entries(queries)) {
      expect([id, archive.header(id)?.userQuery, reopened.header(id)?.userQuery, (await reopened.read(id))?.workflow.userQuery]).toEqual([id, userQuery, userQuery, userQuery]);
    }
  });

  it('a follower sees what the leader archived once it refreshes those workflows, and what it deleted once it refreshes them all', async () => {
    const pool = await database();
    const leader = await opened(pool);
    const follower = await opened(pool);
    await put(leader, workflow('wf-a', 1000), 1);
    await put(leader, workflow('wf-b', 900), 2);
    expect([follower.has('wf-a'), follower.size]).toEqual([false, 0]);

    await follower.refresh(['wf-a']);
    expect([follower.has('wf-a'), follower.has('wf-b')]).toEqual([true, false]);
    expect(follower.header('wf-a')).toEqual(leader.header('wf-a'));
    expect(await follower.read('wf-a')).toEqual({ v: 1, archivedAt: 5000, workflow: workflow('wf-a', 1000) });
    await follower.refresh();
    expect(follower.headers()).toEqual(leader.headers());

    await leader.remove(['wf-a', 'wf-unknown']);
    expect([leader.has('wf-a'), await leader.read('wf-a'), await leader.readSummary('wf-a')]).toEqual([false, undefined, undefined]);
    expect((await pool.query('SELECT workflow_id FROM sb_archive')).rows).toEqual([{ workflow_id: 'wf-b' }]);
    await follower.refresh();
    expect(follower.headers().map((h) => h.id)).toEqual(['wf-b']);
  });

  it('a node that opens knows every archived workflow by id before it reads their headers', async () => {
    const pool = await database();
    const leader = await opened(pool);
    await put(leader, workflow('wf-a', 1000), 1);
    const starting = await PgArchive.open(pool, 'p1', { fence: () => undefined, onWarning: (message) => expect.fail(message) });
    expect([starting.has('wf-a'), starting.has('wf-b')]).toEqual([true, false]);
    await starting.ready();
    expect(starting.headers()).toEqual(leader.headers());
  });

  it('refuses a workflow whose row was altered, cut short or holds a line that does not parse, naming it, and still reads its summary', async () => {
    const pool = await database();
    const archive = await opened(pool);
    for (const id of ['wf-a', 'wf-b', 'wf-c']) await put(archive, bigWorkflow(id, 50), 1);
    const alter = (id: string, body: string) => pool.query(`UPDATE sb_archive SET body = ${body} WHERE workflow_id = $1`, [id]);
    // Says something else (and parses); ends within a line; a line that does not parse.
    await alter('wf-a', "convert_to(replace(convert_from(body, 'UTF8'), '\"n\":20', '\"n\":21'), 'UTF8')");
    await alter('wf-b', 'substring(body FROM 1 FOR octet_length(body) - 3)');
    await alter('wf-c', "convert_to(replace(convert_from(body, 'UTF8'), '\"n\":20', '\"n\":,'), 'UTF8')");
    const why = { 'wf-a': 'its checksum does not match its row', 'wf-b': 'it ends within a line', 'wf-c': 'of its document does not parse' };
    for (const [id, reason] of Object.entries(why)) {
      await expect(archive.read(id)).rejects.toMatchObject({ code: 'INTERNAL', detail: expect.stringMatching(`^archived workflow ${id} in sb_archive \\(partition p1\\) is damaged \\(.*${reason}`) });
      expect((await archive.readSummary(id))?.userQuery).toBe(`query ${id}`);
    }
  });

  it('writes and deletes only under the lease it holds: a leader whose epoch moved on changes no row', async () => {
    const pool = await database();
    const old = await opened(pool, 'p1', { owner: 'node-a', epoch: 1 });
    await put(old, workflow('wf-a', 1000), 4);
    // node-b takes the lease and archives wf-a again at a later version.
    const current = await opened(pool, 'p1', { owner: 'node-b', epoch: 2 });
    await put(current, workflow('wf-a', 1000), 5);
    await expect(put(old, workflow('wf-a', 1000), 4)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(put(old, workflow('wf-stale', 1000), 1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(old.remove(['wf-a'])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const rows = await pool.query<{ workflow_id: string; v: number }>("SELECT workflow_id, (header->>'v')::int AS v FROM sb_archive ORDER BY workflow_id");
    expect(rows.rows).toEqual([{ workflow_id: 'wf-a', v: 5 }]);
    // A node with no lease at all writes nothing either.
    const follower = await PgArchive.open(pool, 'p1', { fence: () => undefined, onWarning: (message) => expect.fail(message) });
    await follower.ready();
    await expect(follower.remove(['wf-a'])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect((await current.read('wf-a'))?.v).toBe(5);
  });

  it('leaves a row whose header is damaged out of the list, says so, keeps its id taken and refuses to read it, naming it', async () => {
    const pool = await database();
    const leader = await opened(pool);
    for (const [index, id] of ['wf-a', 'wf-b', 'wf-c'].entries()) await put(leader, workflow(id, 1000 - index), index + 1);
    await pool.query(`UPDATE sb_archive SET header = 'null'::jsonb WHERE workflow_id = 'wf-a'`);
    await pool.query(`UPDATE sb_archive SET header = jsonb_set(header, '{createdAt}', '"yesterday"') WHERE workflow_id = 'wf-b'`);
    const warnings: string[] = [];
    const again = await opened(pool, 'p1', { owner: 'leader', epoch: 1 }, warnings);
    expect(again.headers().map((h) => h.id)).toEqual(['wf-c']);
    expect(warnings).toEqual(['wf-a', 'wf-b'].map((id) => `archived workflow ${id} in sb_archive (partition p1) has a damaged header: it is not listed, and reading it answers INTERNAL`));
    expect([again.has('wf-a'), again.has('wf-b'), again.has('wf-z')]).toEqual([true, true, false]);
    await expect(again.read('wf-a')).rejects.toMatchObject({ code: 'INTERNAL', detail: expect.stringContaining('archived workflow wf-a in sb_archive (partition p1) is damaged') });
    // The others are read and written as ever.
    expect((await again.read('wf-c'))?.workflow).toEqual(workflow('wf-c', 998));
    await put(again, workflow('wf-d', 900), 4);
    expect(again.headers().map((h) => h.id)).toEqual(['wf-d', 'wf-c']);
    // The leader deletes the damaged rows (retention); followers that refresh, by id or whole, free their ids.
    const byId = await PgArchive.open(pool, 'p1', { fence: () => undefined, onWarning: () => undefined });
    await byId.ready();
    const whole = await PgArchive.open(pool, 'p1', { fence: () => undefined, onWarning: () => undefined });
    await whole.ready();
    expect([byId.has('wf-a'), whole.has('wf-b')]).toEqual([true, true]);
    await again.remove(['wf-a', 'wf-b']);
    await byId.refresh(['wf-a', 'wf-b']);
    await whole.refresh();
    expect([again, byId, whole].map((archive) => [archive.has('wf-a'), archive.has('wf-b'), archive.has('wf-c')])).toEqual([
      [false, false, true],
      [false, false, true],
      [false, false, true],
    ]);
  });
});
