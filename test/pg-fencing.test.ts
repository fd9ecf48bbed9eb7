import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseTable } from '../server/cluster/lease.ts';
import { appendJournal, FencedOff, readJournal } from '../server/store/postgres/pg-journal.ts';
import { PostgresStore } from '../server/store/postgres/postgres-store.ts';
import { ensureSchema } from '../server/store/postgres/schema.ts';
import { encodeRecord } from '../server/store/records.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from './helpers/postgres.ts';

const skip = postgresSkipReason();

/** The journal line of a record numbered `seq` that sets the status of workflow `wf`. */
const line = (seq: number) => encodeRecord({ seq, at: seq, changes: [{ doc: 'wf', v: seq, ops: [{ op: 'replace', path: '/status', value: `s${seq}` }] }] });

describe.skipIf(!!skip)('the leadership lease and the fenced journal', () => {
  let postgres: PostgresServer;
  let pool: pg.Pool;
  let lease: LeaseTable;
  beforeAll(async () => {
    postgres = await startPostgres();
    pool = new pg.Pool({ connectionString: await postgres.newDatabase() });
    await ensureSchema(pool);
    lease = new LeaseTable(pool, 'main');
  });
  afterAll(async () => {
    await pool?.end();
    await postgres?.destroy();
  });

  it('gives the lease to one node at a time, bumps the epoch at each taking, and fences off the appends of the one before', async () => {
    const first = await lease.tryAcquire('a', 'http://a', 60_000);
    expect(first).toBe(1);
    expect(await lease.tryAcquire('b', 'http://b', 60_000)).toBeUndefined();
    await appendJournal(pool, 'main', { owner: 'a', epoch: 1 }, line(1) + line(2), 1);

    // a's term runs out (released here, as a clean stop does); b takes the lease under epoch 2.
    await lease.release('a', 1);
    expect(await lease.renew('b', 1, 60_000)).toBe(false);
    expect(await lease.tryAcquire('b', 'http://b', 60_000)).toBe(2);
    expect(await lease.holder()).toEqual({ nodeId: 'b', url: 'http://b', epoch: 2, live: true, truncations: 0 });
    await expect(appendJournal(pool, 'main', { owner: 'a', epoch: 1 }, line(3), 3)).rejects.toBeInstanceOf(FencedOff);
    expect(await lease.renew('a', 1, 60_000)).toBe(false);
    await appendJournal(pool, 'main', { owner: 'b', epoch: 2 }, line(3), 3);
    expect((await readJournal(pool, 'main', 0)).map((record) => record.seq)).toEqual([1, 2, 3]);
    // A sequence number is never written twice, even by the holder.
    await expect(appendJournal(pool, 'main', { owner: 'b', epoch: 2 }, line(3), 3)).rejects.toThrow(/duplicate key/);
  });

  it('fences off an append that waits on an epoch bump in flight: it sees the new epoch once that commits', async () => {
    const holder = (await lease.holder())!;
    const taker = new pg.Client({ connectionString: pool.options.connectionString });
    await taker.connect();
    try {
      await taker.query('BEGIN');
      await taker.query('UPDATE sb_lease SET owner = $1, epoch = epoch + 1 WHERE partition = $2', ['c', 'main']);
      // The holder's append reads the lease row FOR SHARE: it waits for the taker's transaction.
      const append = appendJournal(pool, 'main', { owner: holder.nodeId, epoch: holder.epoch }, line(4), 4).then(
        () => 'committed',
        (error: Error) => (error instanceof FencedOff ? 'fenced off' : error.message),
      );
      await untilWaiting(pool);
      await taker.query('COMMIT');
      expect(await append).toBe('fenced off');
    } finally {
      await taker.end();
    }
    expect((await readJournal(pool, 'main', 3)).map((record) => record.seq)).toEqual([]);
  });

  it('reads the journal in pages of 4 MB of lines at most, the first row whatever its size, and loads every page', async () => {
    const big = new LeaseTable(pool, 'big');
    const epoch = (await big.tryAcquire('a', 'http://a', 60_000))!;
    // The first adds the document; each sets its note to `mb` MB.
    const sized = (seq: number, mb: number) => {
      const note = 'x'.repeat(mb * 1024 * 1024);
      return encodeRecord({ seq, at: seq, changes: [{ doc: 'wf', v: seq, ops: [seq === 1 ? { op: 'add', path: '', value: { note } } : { op: 'replace', path: '/note', value: note }] }] });
    };
    await appendJournal(pool, 'big', { owner: 'a', epoch }, sized(1, 5) + sized(2, 1) + sized(3, 3) + sized(4, 1), 1);
    const pages: number[][] = [];
    for (let after = 0; ; ) {
      const page = (await readJournal(pool, 'big', after)).map((record) => record.seq);
      if (page.length === 0) break;
      pages.push(page);
      after = page.at(-1)!;
    }
    // A page ends at the row that starts past 4 MB: 5 MB alone, then 1 + 3 MB, then the last.
    expect(pages).toEqual([[1], [2, 3], [4]]);
    const store = new PostgresStore({ url: pool.options.connectionString!, partition: 'big', queryTimeoutMs: 5000, dataDir: mkdtempSync(join(tmpdir(), 'sb-pages-')), snapshotAfterBytes: 1 << 30, snapshotJournalRatio: 0, onWarning: () => undefined });
    try {
      const loaded = await store.load();
      expect(loaded.seq).toBe(4);
      expect(loaded.docs.get('wf')).toEqual({ v: 4, doc: { note: 'x'.repeat(1024 * 1024) } });
    } finally {
      await store.close();
    }
  });
});

/** Resolves once some session of the database waits on a lock. */
async function untilWaiting(pool: pg.Pool): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()");
    if (rows[0]!.n > 0) return;
    if (Date.now() > deadline) throw new Error('no session waits on a lock');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
