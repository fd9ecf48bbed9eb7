import type pg from 'pg';
import { HubError } from '../../../shared/errors.ts';
import type { DocKey, StoredDoc } from '../../domain/machinery/state.ts';
import { replayRecord, type JournalRecord } from '../records.ts';
import type { Recovered } from '../recovery.ts';
import { parseSnapshot, snapshotText } from '../snapshot.ts';
import { snapshotThreshold, type CurrentDocs, type SnapshotEvent, type SnapshotTrigger, type Store } from '../store.ts';
import { appendJournal, DamagedJournal, FencedOff, lastJournalSeq, readJournal, readJournalInHistory, type Fence } from './pg-journal.ts';
import { PgArchive } from './pg-archive.ts';
import { PgCompactionWorker, storeSnapshot } from './pg-compaction.ts';
import { bodyQuery, boundedPool } from './pg-pool.ts';
import { ensureSchema } from './schema.ts';
import { inTransaction } from './transaction.ts';

export interface PostgresStoreOptions extends SnapshotTrigger {
  /** A PostgreSQL connection string, e.g. postgres://user@host:5432/switchboard. */
  url: string;
  /** The partition this node's lease and journal belong to. */
  partition: string;
  /** This node's own directory (reports and other local files). */
  dataDir: string;
  /**
   * At open, start although a journal row is damaged: delete it and every row after it (said in a
   * warning), fencing off any earlier leader; refused while a node holds the lease.
   */
  truncateDamagedJournal?: boolean;
  /**
   * How long a connect or a query (an append: its outcome then unknown) may go unanswered before it
   * is given up: a connection that died without a word would otherwise hold every later write, or
   * a follower's every later step. Those that move a whole snapshot or archived workflow get BODY_TIMEOUT_MS.
   */
  queryTimeoutMs: number;
  onWarning: (message: string) => void;
  /** Told when a snapshot starts and when it is stored. */
  onSnapshot?: (event: SnapshotEvent) => void;
}

/** A connection string without its password, for messages. */
export function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}

/**
 * The cluster's store: the journal, snapshots and archive in PostgreSQL, shared by every node.
 * Only the holder of the lease appends, fenced by its epoch (`fence`, set by the cluster node);
 * followers read what it committed (`readAfter`).
 */
export class PostgresStore implements Store {
  readonly pool: pg.Pool;
  /** The lease this node appends under; undefined while it follows. */
  fence: Fence | undefined;
  private files: PgArchive | undefined;
  private readonly compactor = new PgCompactionWorker();
  /** The last record this node appended (a snapshot by replay goes up to it). */
  private lastAppended = 0;
  /** Told when an append was fenced off: this node no longer leads. */
  onFencedOff: () => void = () => undefined;
  private bytesSinceSnapshot = 0;
  /** The size of the newest snapshot this node read or wrote. */
  private snapshotBytes = 0;
  /** The journal's truncations (sb_lease) as of the last load: the history the loaded state belongs to. */
  truncations = 0;
  private prepared: Promise<void> | undefined;
  /** An append failed without an answer: it may have committed, which must be known before the next. */
  private uncertain = false;
  private snapshotting: Promise<void> | undefined;

  constructor(private readonly options: PostgresStoreOptions) {
    // An idle client that loses its server (PostgreSQL restarted) must not take the process down.
    this.pool = boundedPool(options.url, 4, options.queryTimeoutMs, (error) => options.onWarning(`PostgreSQL connection lost: ${error.message}`));
  }

  /** The connection string. */
  get url(): string {
    return this.options.url;
  }

  get partition(): string {
    return this.options.partition;
  }

  get archive(): PgArchive {
    if (!this.files) throw new Error('store is not open');
    return this.files;
  }

  /** Reaches PostgreSQL and creates the cluster's tables when missing (once); a clear error when it cannot. */
  prepare(): Promise<void> {
    this.prepared ??= ensureSchema(this.pool).catch((error: Error) => {
      this.prepared = undefined;
      throw new HubError('UNAVAILABLE', `cannot use PostgreSQL at ${redacted(this.options.url)}: ${error.message}`);
    });
    return this.prepared;
  }

  async open(): Promise<Recovered> {
    await this.prepare();
    const { docs, seq } = await this.load().catch(async (error: unknown) => {
      if (!(error instanceof DamagedJournal) || !this.options.truncateDamagedJournal) throw error;
      this.options.onWarning(await this.truncateAt(error));
      return this.load();
    });
    this.files = await PgArchive.open(this.pool, this.partition, { fence: () => this.fence, onWarning: this.options.onWarning });
    return { docs, seq, lastSegment: 0, warnings: [] };
  }

  /**
   * Every document as of the newest committed record: the newest snapshot, and the journal after it
   * replayed. Notes the journal's truncations first: one made meanwhile shows as a later count.
   */
  async load(): Promise<{ docs: Map<DocKey, StoredDoc>; seq: number }> {
    // One view of the tables: two snapshots by the leader meanwhile would trim rows after the one read.
    return inTransaction(this.pool, async (client) => {
      const lease = (await client.query<{ truncations: string }>('SELECT truncations FROM sb_lease WHERE partition = $1', [this.partition])).rows[0];
      this.truncations = Number(lease?.truncations ?? 0);
      const row = (await client.query<{ body: string }>(bodyQuery('SELECT body FROM sb_snapshot WHERE partition = $1 ORDER BY seq DESC LIMIT 1', [this.partition]))).rows[0];
      const snapshot = row ? parseSnapshot(row.body, `snapshot of partition ${this.partition}`) : undefined;
      this.snapshotBytes = row?.body.length ?? 0;
      const docs = new Map<DocKey, StoredDoc>(snapshot?.docs ?? []);
      let seq = snapshot?.seq ?? 0;
      for (;;) {
        const records = await readJournal(client, this.partition, seq);
        for (const record of records) {
          if (record.seq !== seq + 1) throw new Error(`the journal in PostgreSQL jumps from record ${seq} to ${record.seq}`);
          replayRecord(docs, record);
          seq = record.seq;
        }
        if (records.length === 0) return { docs, seq };
      }
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  /**
   * Deletes the damaged row and every row after it, in one transaction with an epoch bump that
   * fences off the appends of any earlier leader; refused while a node holds the lease (it may hold
   * those records in memory). Says what it did.
   */
  private async truncateAt(damage: DamagedJournal): Promise<string> {
    return inTransaction(this.pool, async (client) => {
      const lease = (await client.query<{ owner: string; epoch: string; live: boolean }>('SELECT owner, epoch, expires_at > now() AS live FROM sb_lease WHERE partition = $1 FOR UPDATE', [this.partition])).rows[0];
      if (lease?.live) {
        throw new HubError('UNAVAILABLE', `${damage.message} Refusing --truncate-damaged-journal: node ${lease.owner} holds the lease (epoch ${lease.epoch}) and may hold those records in memory: stop it, or let its lease run out, first.`);
      }
      await client.query('UPDATE sb_lease SET epoch = epoch + 1, truncations = truncations + 1 WHERE partition = $1', [this.partition]);
      const deleted = (await client.query<{ last: string }>(
        'WITH gone AS (DELETE FROM sb_journal WHERE partition = $1 AND seq >= $2 RETURNING seq) SELECT max(seq) AS last FROM gone',
        [this.partition, damage.seq],
      )).rows[0]!;
      return `--truncate-damaged-journal: ${damage.row} is damaged (${damage.reason}); deleted rows ${damage.seq} to ${deleted.last}; the state is as of record ${damage.seq - 1}`;
    });
  }

  /** The record the newest snapshot is of (0 when there is none). */
  async newestSnapshotSeq(): Promise<number> {
    const { rows } = await this.pool.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM sb_snapshot WHERE partition = $1', [this.partition]);
    return Number(rows[0]?.seq ?? 0);
  }

  /** The committed records after `seq`, in order (a page of them), with the journal's truncations as of the same read (undefined when no record follows `seq`). */
  readFollowing(seq: number): Promise<{ records: JournalRecord[]; truncations: number | undefined }> {
    return readJournalInHistory(this.pool, this.partition, seq);
  }

  async append(records: string | Uint8Array, firstSeq: number): Promise<void> {
    const fence = this.fence;
    if (!fence) throw new FencedOff('this node is not the leader');
    try {
      if (this.uncertain && (await lastJournalSeq(this.pool, this.partition)) >= firstSeq) {
        // The failed append did commit, and memory no longer holds it: follow the journal again.
        throw new FencedOff('an append this node took for failed was committed; it follows the journal again');
      }
      this.uncertain = false;
      this.lastAppended = firstSeq + (await appendJournal(this.pool, this.partition, fence, records, firstSeq)) - 1;
    } catch (error) {
      if (error instanceof FencedOff) {
        this.fence = undefined;
        this.onFencedOff();
      } else this.uncertain = true;
      throw error;
    }
    this.bytesSinceSnapshot += records.length;
  }

  /**
   * Appends from now on under `fence` (this node took the lease). The journal rows no snapshot holds
   * yet, whoever wrote them, count toward the next snapshot: else a cluster whose leaders change
   * more often than the threshold is reached would never take one, and its journal would only grow.
   */
  async lead(fence: Fence): Promise<void> {
    const { rows } = await this.pool.query<{ bytes: string }>(
      `SELECT coalesce(sum(octet_length(line) + 1), 0) AS bytes FROM sb_journal
       WHERE partition = $1 AND seq > coalesce((SELECT max(seq) FROM sb_snapshot WHERE partition = $1), 0)`,
      [this.partition],
    );
    this.bytesSinceSnapshot = Number(rows[0]!.bytes);
    this.fence = fence;
  }

  snapshotDue(): boolean {
    return this.fence !== undefined && this.bytesSinceSnapshot >= snapshotThreshold(this.options, this.snapshotBytes) && !this.snapshotting;
  }

  /** From `current` when the hub hands it over (a small state), else by replaying the journal in a paced worker. */
  startSnapshot(current?: CurrentDocs): void {
    if (this.snapshotting) return;
    this.snapshotting = this.takeSnapshot(current)
      .catch((error: Error) => this.options.onWarning(`snapshot failed, the journal is kept: ${error.message}`))
      .finally(() => (this.snapshotting = undefined));
  }

  /** A snapshot from `current`, or by replay in the worker, told to onSnapshot as it starts and ends. */
  private async takeSnapshot(current?: CurrentDocs): Promise<void> {
    const started = performance.now();
    const from = current ? 'memory' : 'journal';
    this.options.onSnapshot?.({ phase: 'started', from, journalBytes: this.bytesSinceSnapshot });
    this.bytesSinceSnapshot = 0;
    // Stored under the lease of now: a leader that lost it meanwhile stores nothing.
    const fence = this.fence;
    if (!fence) throw new FencedOff('this node is not the leader');
    const { seq, docs, bytes } = current ? await this.writeSnapshot(current, fence) : await this.compactor.compact(this.options.url, this.partition, this.lastAppended, true, fence);
    if (bytes !== undefined) this.snapshotBytes = bytes;
    this.options.onSnapshot?.({ phase: 'finished', from, seq, docs, bytes, ms: performance.now() - started });
  }

  async snapshot(): Promise<void> {
    await this.snapshotting;
  }

  async close(current?: CurrentDocs): Promise<void> {
    this.compactor.hurry();
    await this.snapshotting;
    if (this.fence && current && this.bytesSinceSnapshot > 0) await this.takeSnapshot(current).catch((error: Error) => this.options.onWarning(`final snapshot failed: ${error.message}`));
    this.fence = undefined;
    await this.compactor.close();
    await this.files?.close();
    await this.pool.end();
  }

  /** Stores a snapshot of `current` under `fence`, then drops snapshots and journal rows no node needs any more. */
  private async writeSnapshot(current: CurrentDocs, fence: Fence): Promise<{ seq: number; docs: number; bytes: number }> {
    const { text } = snapshotText({ segment: 0, seq: current.seq, docs: current.docs });
    await storeSnapshot(this.pool, this.partition, current.seq, text, fence);
    return { seq: current.seq, docs: current.docs.length, bytes: text.length };
  }
}
