import type { Pool, PoolClient } from 'pg';
import { HubError } from '../../../shared/errors.ts';
import { decodeRecord, type JournalRecord } from '../records.ts';

/** Who may append: the node holding the partition's lease, under this epoch. */
export interface Fence {
  owner: string;
  epoch: number;
}

/** An append refused because the appender no longer holds the lease under its epoch: nothing was committed. */
export class FencedOff extends Error {
  constructor(message = 'this node no longer holds the leadership lease: nothing was committed') {
    super(message);
    this.name = 'FencedOff';
  }
}

/**
 * A journal row that does not decode, or holds another record than its seq: no node can load or
 * follow the journal past it. Named by partition and seq, with the way out.
 */
export class DamagedJournal extends HubError {
  constructor(
    readonly partition: string,
    readonly seq: number,
    readonly reason: string,
  ) {
    super(
      'UNAVAILABLE',
      `journal row ${seq} of partition ${partition} in PostgreSQL is damaged (${reason}): no node can load or follow the journal past record ${seq - 1}, ` +
        `so none takes the lease over it. Once no node leads, run \`switchboard start --postgres URL --truncate-damaged-journal\` once, on one node, ` +
        `to start from record ${seq - 1}, deleting row ${seq} and every row after it.`,
    );
  }

  /** How the row is named in messages. */
  get row(): string {
    return `journal row ${this.seq} of partition ${this.partition} in PostgreSQL`;
  }
}

/** The channel a leader notifies after each append (the payload is `<partition> <last seq>`) and after archive deletions (pg-archive.ts). */
export const JOURNAL_CHANNEL = 'sb_journal';

/**
 * One statement, so one round trip and one transaction: the lease row is read FOR SHARE, so an
 * append waits for a new leader's epoch bump in flight and then sees it (READ COMMITTED re-checks
 * a locked row), and inserts only while the lease still names this owner and epoch. The primary
 * key refuses a sequence number used twice. Followers are woken at commit.
 */
const APPEND = `
WITH lease AS (
  SELECT 1 FROM sb_lease WHERE partition = $1 AND owner = $2 AND epoch = $3 FOR SHARE
), ins AS (
  INSERT INTO sb_journal (partition, seq, epoch, line)
  SELECT $1, s, $3, l FROM unnest($4::bigint[], $5::text[]) AS t(s, l)
  WHERE EXISTS (SELECT 1 FROM lease)
  RETURNING seq
)
SELECT count(*)::int AS n, CASE WHEN count(*) > 0 THEN pg_notify('${JOURNAL_CHANNEL}', $1 || ' ' || max(seq)::text) END AS notified FROM ins`;

/** The journal lines of an encoded batch, without their newlines. */
function splitLines(records: string | Uint8Array): string[] {
  const text = typeof records === 'string' ? records : Buffer.from(records.buffer, records.byteOffset, records.byteLength).toString('utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Appends a batch's lines, numbered from `firstSeq`, under the fence, and says how many; throws
 * FencedOff when the lease moved on, and an error when the pool's bound passed without an answer
 * (the connection is then dropped, and whether the rows committed is unknown).
 */
export async function appendJournal(pool: Pool, partition: string, fence: Fence, records: string | Uint8Array, firstSeq: number): Promise<number> {
  const lines = splitLines(records);
  if (lines.length === 0) return 0;
  const seqs = lines.map((_, i) => firstSeq + i);
  const result = await pool.query<{ n: number }>(APPEND, [partition, fence.owner, fence.epoch, seqs, lines]);
  if (result.rows[0]?.n !== lines.length) throw new FencedOff();
  return lines.length;
}

/** Rows a page of the journal holds at most. */
const PAGE_ROWS = 2_000;
/**
 * Bytes of lines a page holds at most (its first row whatever its size): a page must come within
 * a query's bound, a lease's term, also where each row is a bulk command of a thousand orders.
 */
const PAGE_BYTES = 4 * 1024 * 1024;

/** The page of rows after `afterSeq` (columns seq and line, then `extra`), with $1 the partition and $2 afterSeq. */
function pageQuery(extra = ''): string {
  return `SELECT seq, line${extra} FROM (
    SELECT seq, line, sum(octet_length(line)) OVER (ORDER BY seq) - octet_length(line) AS before
    FROM sb_journal WHERE partition = $1 AND seq > $2 ORDER BY seq LIMIT ${PAGE_ROWS}
  ) AS page WHERE before < ${PAGE_BYTES} ORDER BY seq`;
}

/** The committed records after `afterSeq`, in order, a page of them; throws DamagedJournal on a damaged row. */
export async function readJournal(pool: Pool | PoolClient, partition: string, afterSeq: number): Promise<JournalRecord[]> {
  const result = await pool.query<{ seq: string; line: string }>(pageQuery(), [partition, afterSeq]);
  return result.rows.map((row) => decodeRow(partition, row));
}

/**
 * readJournal, and the journal's truncations (sb_lease) as of the same read: records read under
 * another count than the one a node loaded under may follow records it holds that a truncation
 * deleted. `truncations` is undefined when no record follows. The records before a damaged row
 * come back alone, so that a follower stops at the record before it; it throws DamagedJournal
 * when the damaged row comes first.
 */
export async function readJournalInHistory(pool: Pool, partition: string, afterSeq: number): Promise<{ records: JournalRecord[]; truncations: number | undefined }> {
  const result = await pool.query<{ seq: string; line: string; truncations: string | null }>(
    pageQuery(', (SELECT truncations FROM sb_lease WHERE partition = $1) AS truncations'),
    [partition, afterSeq],
  );
  const first = result.rows[0];
  const records: JournalRecord[] = [];
  for (const row of result.rows) {
    try {
      records.push(decodeRow(partition, row));
    } catch (error) {
      if (records.length === 0) throw error;
      break;
    }
  }
  return { records, truncations: first ? Number(first.truncations ?? 0) : undefined };
}

function decodeRow(partition: string, row: { seq: string; line: string }): JournalRecord {
  const record = decodeRecord(row.line);
  if (!record) throw new DamagedJournal(partition, Number(row.seq), 'it does not decode');
  if (record.seq !== Number(row.seq)) throw new DamagedJournal(partition, Number(row.seq), `it holds record ${record.seq}`);
  return record;
}

/** The sequence number of the newest committed record (0 when there is none). */
export async function lastJournalSeq(pool: Pool, partition: string): Promise<number> {
  const result = await pool.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM sb_journal WHERE partition = $1', [partition]);
  return Number(result.rows[0]?.seq ?? 0);
}
