import type { Pool, PoolClient } from 'pg';
import type { DocKey, StoredDoc } from '../../domain/machinery/state.ts';
import { workerEntry } from '../../worker-threads.ts';
import { PacedWorker } from '../paced-worker.ts';
import { decodeRecord, replayRecord } from '../records.ts';
import { parseSnapshot, snapshotText, type Snapshot } from '../snapshot.ts';
import { FencedOff, type Fence } from './pg-journal.ts';
import { bodyQuery } from './pg-pool.ts';
import { inTransaction } from './transaction.ts';

const workerUrl = workerEntry('pg-compaction-worker', import.meta.url);
/** Journal rows read per query while replaying (a few MB of lines). */
const ROWS_PER_READ = 5_000;

/** What a compaction did: the record its snapshot is as of, how many documents it holds, its size when it wrote one, how long a paced one slept (ms). */
export interface PgCompacted {
  seq: number;
  docs: number;
  bytes?: number;
  pausedMs: number;
}

/** A job for pg-compaction-worker.ts. */
export interface PgCompactionJob {
  url: string;
  partition: string;
  uptoSeq: number;
  paced: boolean;
  /** The lease the snapshot is stored under (see storeSnapshot). */
  fence: Fence | undefined;
}

/** The thread that folds a partition's journal rows into a snapshot row (see PacedWorker), for a leader that compacts again and again. */
export class PgCompactionWorker extends PacedWorker<PgCompactionJob, PgCompacted> {
  constructor() {
    super(workerUrl, 'compaction');
  }

  /** Compacts `partition` of the database at `url` up to record `uptoSeq` (see compactPartition), paced unless `paced` is false or hurry() is called. */
  compact(url: string, partition: string, uptoSeq: number, paced = true, fence?: Fence): Promise<PgCompacted> {
    return this.run({ url, partition, uptoSeq, paced, fence });
  }
}

/**
 * Compacts once in a worker thread of its own (see compactPartition), stopped after.
 * @example const { seq } = await compactInWorker(url, 'main', 120_000);
 */
export async function compactInWorker(url: string, partition: string, uptoSeq: number, paced = true): Promise<PgCompacted> {
  const worker = new PgCompactionWorker();
  try {
    return await worker.compact(url, partition, uptoSeq, paced);
  } finally {
    await worker.close();
  }
}

/**
 * Writes the snapshot of `partition` as of record `uptoSeq`: the newest snapshot row (if any) with
 * the journal rows after it replayed, up to `uptoSeq`; then trims (trimAfterSnapshot). A row that
 * does not decode, or a missing one, fails it and nothing is written. When the newest snapshot
 * is at `uptoSeq` or later already, nothing is written and its record is answered.
 */
export async function compactPartition(pool: Pool, partition: string, uptoSeq: number, onRecord?: () => void, fence?: Fence): Promise<{ seq: number; docs: number; bytes?: number }> {
  // One view of the tables while reading, so that a trim by the leader meanwhile takes no row from under the replay.
  const { seq, docs, snapshotted } = await inTransaction(pool, (client) => replay(client, partition, uptoSeq, onRecord), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  if (snapshotted) return { seq, docs: docs.size };
  const { text } = snapshotText({ segment: 0, seq, docs: [...docs] });
  await storeSnapshot(pool, partition, seq, text, fence);
  return { seq, docs: docs.size, bytes: text.length };
}

/**
 * Snapshot rows are fenced as journal appends are (pg-journal.ts): a leader frozen through a
 * truncation of the journal (--truncate-damaged-journal, which bumps the epoch) holds records that
 * were deleted, and the new leader's records took their numbers; its snapshot would give them back
 * to every node that loads it, and lose the new ones.
 */
const PUT_SNAPSHOT = `
WITH lease AS (
  SELECT 1 FROM sb_lease WHERE partition = $1 AND owner = $4 AND epoch = $5 FOR SHARE
), put AS (
  INSERT INTO sb_snapshot (partition, seq, body) SELECT $1, $2, $3 WHERE $4::text IS NULL OR EXISTS (SELECT 1 FROM lease)
  ON CONFLICT (partition, seq) DO NOTHING
)
SELECT $4::text IS NULL OR EXISTS (SELECT 1 FROM lease) AS held`;

/**
 * Stores the snapshot row of `partition` as of record `seq` while `fence` holds the lease (without
 * one, as a tool run while no node leads does), then trims (trimAfterSnapshot); FencedOff when
 * the lease moved on: nothing is stored.
 */
export async function storeSnapshot(pool: Pool, partition: string, seq: number, text: string, fence: Fence | undefined): Promise<void> {
  // The leader may have written this one from memory meanwhile, or the compaction: the same documents.
  const { rows } = await pool.query<{ held: boolean }>(bodyQuery(PUT_SNAPSHOT, [partition, seq, text, fence?.owner ?? null, fence?.epoch ?? null]));
  if (!rows[0]?.held) throw new FencedOff('this node no longer holds the leadership lease: the snapshot was not stored');
  await trimAfterSnapshot(pool, partition);
}

/**
 * The documents as of record `uptoSeq`: the newest snapshot's, with the journal rows after it
 * replayed. `snapshotted`: the newest snapshot is of that record or a later one already (its
 * documents and record are answered then).
 */
async function replay(client: PoolClient, partition: string, uptoSeq: number, onRecord?: () => void): Promise<{ seq: number; docs: Map<DocKey, StoredDoc>; snapshotted: boolean }> {
  const snapshot = await newestSnapshot(client, partition);
  const docs = new Map<DocKey, StoredDoc>(snapshot?.docs);
  let seq = snapshot?.seq ?? 0;
  if (seq >= uptoSeq) return { seq, docs, snapshotted: true };
  const missing = (to: number) => new Error(`journal rows ${seq + 1} to ${to} of partition ${partition} are missing`);
  while (seq < uptoSeq) {
    const { rows } = await client.query<{ seq: string; line: string }>(
      'SELECT seq, line FROM sb_journal WHERE partition = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4',
      [partition, seq, uptoSeq, ROWS_PER_READ],
    );
    if (rows.length === 0) throw missing(uptoSeq);
    for (const row of rows) {
      if (Number(row.seq) !== seq + 1) throw missing(Number(row.seq) - 1);
      const record = decodeRecord(row.line);
      if (!record || record.seq !== seq + 1) throw new Error(`journal row ${row.seq} of partition ${partition} is damaged: it does not decode to record ${row.seq}`);
      replayRecord(docs, record);
      seq = record.seq;
      onRecord?.();
    }
  }
  return { seq, docs, snapshotted: false };
}

/** The newest snapshot row of `partition`, parsed and checked; undefined when there is none. */
async function newestSnapshot(db: Pool | PoolClient, partition: string): Promise<Snapshot | undefined> {
  const { rows } = await db.query<{ seq: string; body: string }>(bodyQuery('SELECT seq, body FROM sb_snapshot WHERE partition = $1 ORDER BY seq DESC LIMIT 1', [partition]));
  const row = rows[0];
  if (!row) return undefined;
  const where = `in sb_snapshot (partition ${partition}, seq ${row.seq})`;
  const snapshot = parseSnapshot(row.body, where);
  if (snapshot.seq !== Number(row.seq)) throw new Error(`snapshot ${where} is of record ${snapshot.seq}`);
  return snapshot;
}

/**
 * Deletes, in one transaction, the snapshots of `partition` older than the newest two and the
 * journal rows up to the older of those two: a follower a little behind the newest snapshot
 * still finds the rows after its own position. The leader calls it after each snapshot row it
 * writes (compactPartition does too).
 */
export async function trimAfterSnapshot(pool: Pool, partition: string): Promise<void> {
  await inTransaction(pool, async (client) => {
    const { rows } = await client.query<{ seq: string }>('SELECT seq FROM sb_snapshot WHERE partition = $1 ORDER BY seq DESC LIMIT 2', [partition]);
    const older = rows[1]?.seq;
    if (older === undefined) return;
    await client.query('DELETE FROM sb_snapshot WHERE partition = $1 AND seq < $2', [partition, older]);
    await client.query('DELETE FROM sb_journal WHERE partition = $1 AND seq <= $2', [partition, older]);
  });
}
