import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { summarize } from '../server/domain/workflows/summary.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { PgArchive } from '../server/store/postgres/pg-archive.ts';
import { ensureSchema } from '../server/store/postgres/schema.ts';
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

  /** The archive of `partition` in `pool`'s database, once its headers are read. */
  async function opened(pool: pg.Pool, partition = 'p1'): Promise<PgArchive> {
    const archive = await PgArchive.open(pool, partition);
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
    const starting = await PgArchive.open(pool, 'p1');
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
      await expect(archive.read(id)).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(`^archived workflow ${id} in sb_archive \\(partition p1\\) is damaged \\(.*${reason}`) });
      expect((await archive.readSummary(id))?.userQuery).toBe(`query ${id}`);
    }
  });
});
