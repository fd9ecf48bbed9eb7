import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { DocKey, StoredDoc } from '../server/domain/machinery/state.ts';
import { decodeRecord, encodeRecord, replayRecord, type JournalRecord } from '../server/store/records.ts';
import { parseSnapshot, snapshotText } from '../server/store/snapshot.ts';
import { compactInWorker, PgCompactionWorker, trimAfterSnapshot } from '../server/store/postgres/pg-compaction.ts';
import { ensureSchema } from '../server/store/postgres/schema.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from './helpers/postgres.ts';

/**
 * Record `seq` of a journal over a few documents: wf-1 and wf-2 created by records 1 and 2, wf-3
 * by record 3 and deleted by record 40; then each record sets wf-1's counter and adds it an
 * order, and every third one sets wf-2's counter too.
 */
function record(seq: number): JournalRecord {
  const at = 1000 + seq;
  if (seq <= 3) return { seq, at, changes: [{ doc: `wf-${seq}`, v: seq, ops: [{ op: 'add', path: '', value: { id: `wf-${seq}`, n: 0, orders: {} } }] }] };
  if (seq === 40) return { seq, at, changes: [{ doc: 'wf-3', v: seq, ops: [{ op: 'remove', path: '' }] }] };
  const changes: JournalRecord['changes'] = [
    {
      doc: 'wf-1',
      v: seq,
      ops: [
        { op: 'replace', path: '/n', value: seq },
        { op: 'add', path: `/orders/o${seq}`, value: { id: `o${seq}`, note: `ordre n° ${seq} ✓` } },
      ],
    },
  ];
  if (seq % 3 === 0) changes.push({ doc: 'wf-2', v: seq, ops: [{ op: 'replace', path: '/n', value: seq }] });
  return { seq, at, changes };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** The documents after records 1 to `seq`, replayed here from their journal lines. */
function replayedUpTo(seq: number): Array<[DocKey, StoredDoc]> {
  const docs = new Map<DocKey, StoredDoc>();
  for (const n of range(1, seq)) replayRecord(docs, decodeRecord(encodeRecord(record(n)).slice(0, -1))!);
  return [...docs];
}

describe.skipIf(!!postgresSkipReason())('compaction of the PostgreSQL journal', () => {
  let server: PostgresServer;
  /** One thread for the tests that compact again and again, as a leader does (compactInWorker starts one per call). */
  const compactor = new PgCompactionWorker();
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await compactor.close();
    await server?.destroy();
  });

  /** A new database with the cluster's tables, and a pool on it ended when the test ends. */
  async function database(): Promise<{ url: string; pool: pg.Pool }> {
    const url = await server.newDatabase();
    const pool = new pg.Pool({ connectionString: url });
    onTestFinished(() => pool.end());
    await ensureSchema(pool);
    return { url, pool };
  }

  /** Writes journal rows for records `from` to `to` of `partition`, each line as the embedded journal writes it, without its newline. */
  async function journal(pool: pg.Pool, from: number, to: number, partition = 'p1'): Promise<void> {
    const seqs = range(from, to);
    const lines = seqs.map((seq) => encodeRecord(record(seq)).slice(0, -1));
    await pool.query('INSERT INTO sb_journal (partition, seq, epoch, line) SELECT $1, seq, 1, line FROM unnest($2::bigint[], $3::text[]) AS t(seq, line)', [partition, seqs, lines]);
  }

  /** The partition's snapshot rows, oldest first, each parsed and checked. */
  async function snapshots(pool: pg.Pool, partition = 'p1') {
    const { rows } = await pool.query<{ seq: string; body: string }>('SELECT seq, body FROM sb_snapshot WHERE partition = $1 ORDER BY seq', [partition]);
    return rows.map((row) => ({ row: Number(row.seq), ...parseSnapshot(row.body, `row ${row.seq}`) }));
  }

  /** The first and last record of the partition's journal rows, and how many there are. */
  async function journalRows(pool: pg.Pool, partition = 'p1') {
    const { rows } = await pool.query<{ first: number; last: number; count: number }>(
      'SELECT min(seq)::int AS first, max(seq)::int AS last, count(*)::int AS count FROM sb_journal WHERE partition = $1',
      [partition],
    );
    return rows[0];
  }

  it('writes a snapshot equal to replaying the records, then a later one from that snapshot and the rows after it', async () => {
    const { url, pool } = await database();
    await journal(pool, 1, 200);
    await expect(compactInWorker(url, 'p1', 150)).resolves.toMatchObject({ seq: 150, docs: 2 });
    const [first] = await snapshots(pool);
    expect(first).toMatchObject({ row: 150, seq: 150, segment: 0, docs: replayedUpTo(150) });
    // The rows the snapshot holds are not needed again.
    await pool.query('DELETE FROM sb_journal WHERE seq <= 150');
    await expect(compactInWorker(url, 'p1', 200)).resolves.toMatchObject({ seq: 200, docs: 2 });
    expect((await snapshots(pool)).map((snapshot) => [snapshot.seq, snapshot.docs])).toEqual([
      [150, replayedUpTo(150)],
      [200, replayedUpTo(200)],
    ]);
    // Asked again for a record the newest snapshot holds, it writes nothing.
    await expect(compactInWorker(url, 'p1', 180)).resolves.toMatchObject({ seq: 200, docs: 2 });
    expect((await snapshots(pool)).map((snapshot) => snapshot.seq)).toEqual([150, 200]);
  });

  it('keeps the newest two snapshots and the journal rows after the older of them, and the leader trims the same way after a snapshot of its own', async () => {
    const { url, pool } = await database();
    await journal(pool, 1, 300);
    await journal(pool, 1, 50, 'p2');
    await compactor.compact(url, 'p1', 100);
    expect([(await snapshots(pool)).map((s) => s.seq), await journalRows(pool)]).toEqual([[100], { first: 1, last: 300, count: 300 }]);
    await compactor.compact(url, 'p1', 200);
    expect([(await snapshots(pool)).map((s) => s.seq), await journalRows(pool)]).toEqual([[100, 200], { first: 101, last: 300, count: 200 }]);
    await compactor.compact(url, 'p1', 300);
    expect([(await snapshots(pool)).map((s) => s.seq), await journalRows(pool)]).toEqual([[200, 300], { first: 201, last: 300, count: 100 }]);

    // The leader writes a snapshot from memory, then trims.
    await journal(pool, 301, 350);
    await pool.query('INSERT INTO sb_snapshot (partition, seq, body) VALUES ($1, $2, $3)', ['p1', 350, snapshotText({ segment: 0, seq: 350, docs: replayedUpTo(350) }).text]);
    await trimAfterSnapshot(pool, 'p1');
    expect([(await snapshots(pool)).map((s) => s.seq), await journalRows(pool)]).toEqual([[300, 350], { first: 301, last: 350, count: 50 }]);
    // Another partition's rows are its own.
    expect([await snapshots(pool, 'p2'), await journalRows(pool, 'p2')]).toEqual([[], { first: 1, last: 50, count: 50 }]);
  });

  it('refuses a journal row that does not decode, or a missing one, and writes no snapshot', async () => {
    const { url, pool } = await database();
    await journal(pool, 1, 20);
    await pool.query(`UPDATE sb_journal SET line = replace(line, '"/n",5', '"/n",6') WHERE seq = 5`);
    await expect(compactor.compact(url, 'p1', 20)).rejects.toThrow('compaction failed: journal row 5 of partition p1 is damaged');
    await pool.query('DELETE FROM sb_journal WHERE seq IN (5, 6)');
    await expect(compactor.compact(url, 'p1', 20)).rejects.toThrow('compaction failed: journal rows 5 to 6 of partition p1 are missing');
    await expect(compactor.compact(url, 'p1', 30)).rejects.toThrow('compaction failed: journal rows 5 to 6 of partition p1 are missing');
    await pool.query('DELETE FROM sb_journal WHERE seq > 4');
    await expect(compactor.compact(url, 'p1', 10)).rejects.toThrow('compaction failed: journal rows 5 to 10 of partition p1 are missing');
    expect(await snapshots(pool)).toEqual([]);
  });

  it('sleeps between slices of replay in the background, and not once told to hurry', async () => {
    const { url, pool } = await database();
    await journal(pool, 1, 4_000);
    await journal(pool, 4_001, 8_000);
    const paced = await compactor.compact(url, 'p1', 4_000);
    expect(paced).toMatchObject({ seq: 4_000, docs: 2 });
    expect(paced.pausedMs).toBeGreaterThan(0);
    const hurrying = compactor.compact(url, 'p1', 8_000);
    compactor.hurry();
    const hurried = await hurrying;
    expect(hurried).toMatchObject({ seq: 8_000, docs: 2 });
    // The worker may start a slice before the flag is set (another thread): it then sleeps only
    // until hurry() wakes it, never through the rest of the job as the paced one did.
    expect(hurried.pausedMs).toBeLessThan(paced.pausedMs);
    expect((await snapshots(pool)).at(-1)?.docs).toEqual(replayedUpTo(8_000));
  });
});
