import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { HubError } from '../../../shared/errors.ts';
import type { WorkflowSummary } from '../../../shared/schemas/summary.ts';
import { workflowHeader } from '../../../shared/schemas/workflow.ts';
import { TimeSlice } from '../../time-slice.ts';
import { damaged, HeaderIndex, type ArchivedHeader, type ArchivedWorkflow, type WorkflowArchive, type WorkflowToArchive } from '../archive.ts';
import { DamagedPart, readDocument } from '../archive-lines.ts';

/**
 * A document is read back in parts of this many bytes, a row each: each part's hex text (how
 * PostgreSQL sends bytea) is decoded as it arrives, in well under a millisecond. A 26 MB document
 * read as one value held the event loop 0.3 to 1 s (on a busy two-core machine), in parts at most 50 ms.
 */
const PART_BYTES = 256 * 1024;
/** Headers put in the index between two looks at the clock while the archive loads. */
const HEADERS_PER_LOOK = 64;

/** The header as a row holds it (jsonb: its keys reordered), in the order headerOf gives. */
function headerFromRow(stored: ArchivedHeader): ArchivedHeader {
  return { ...workflowHeader(stored), v: stored.v, archivedAt: stored.archivedAt };
}

/**
 * The cluster's archive, in the table sb_archive (see schema.ts): a row per workflow and
 * partition, holding its header, its summary, its document as the lines of archive-lines.ts and
 * their SHA-256. Several nodes share the table and only the leader writes it: a follower learns
 * of what the leader archived or deleted through `refresh`. Headers are held in memory, as the
 * file archive holds them; documents and summaries are read from the table when asked for.
 */
export class PgArchive implements WorkflowArchive {
  private index = new HeaderIndex();
  /** Every archived workflow's id, read when the archive opens, answering `has` until the headers are loaded. */
  private ids: Set<string> | undefined;
  private loading: Promise<void> | undefined;
  /** Writes and reloads in order, one at a time: a reload never misses a write, nor a write a reload. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly pool: Pool,
    private readonly partition: string,
  ) {}

  /**
   * Opens the archive of `partition`, reading the ids of its workflows (so that `has` is exact
   * from now on); their headers are read later, by `ready()`, so that start-up does not grow with
   * the archive as much.
   * @example const archive = await PgArchive.open(pool, 'main'); await archive.ready();
   */
  static async open(pool: Pool, partition: string): Promise<PgArchive> {
    const archive = new PgArchive(pool, partition);
    const { rows } = await pool.query<{ workflow_id: string }>('SELECT workflow_id FROM sb_archive WHERE partition = $1', [partition]);
    archive.ids = new Set(rows.map((row) => row.workflow_id));
    return archive;
  }

  /** Reads every header, at the first call; until it resolves `size`, `header` and `headers` are incomplete. */
  ready(): Promise<void> {
    if (!this.loading) {
      // First in the queue: writes and reloads wait until the headers are read.
      this.loading = this.serial(async () => {
        this.index = await this.readHeaders();
        this.ids = undefined;
      });
      // Those who wait for it see a failure; a write that only queues behind it must not leave it unhandled.
      this.loading.catch(() => undefined);
    }
    return this.loading;
  }

  get size(): number {
    return this.index.size;
  }
  /** Whether the workflow is archived, as this node knows it (a follower: as of its last refresh). */
  has(id: string): boolean {
    return this.ids?.has(id) ?? this.index.has(id);
  }
  header(id: string): ArchivedHeader | undefined {
    return this.index.get(id);
  }
  headers(): readonly ArchivedHeader[] {
    return this.index.all();
  }

  /** Writes the row (replacing one of the same workflow), then lists it. */
  put(entry: WorkflowToArchive, summary: WorkflowSummary): Promise<void> {
    const summaryText = JSON.stringify(summary);
    void this.ready();
    return this.serial(async () => {
      const hash = createHash('sha256');
      const parts: Buffer[] = [];
      for await (const part of entry.lines) {
        hash.update(part);
        parts.push(part);
      }
      await this.pool.query(
        `INSERT INTO sb_archive (partition, workflow_id, header, summary, body, sha256) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (partition, workflow_id) DO UPDATE SET header = EXCLUDED.header, summary = EXCLUDED.summary, body = EXCLUDED.body, sha256 = EXCLUDED.sha256`,
        [this.partition, entry.header.id, JSON.stringify(entry.header), summaryText, Buffer.concat(parts), hash.digest('hex')],
      );
      this.index.put(entry.header);
    });
  }

  /** Reads the workflow from the table (whatever this node has listed), checked against its SHA-256, a slice per turn. */
  async read(id: string): Promise<ArchivedWorkflow | undefined> {
    // One statement, so that its parts are of one version of the row. The body is detoasted once,
    // by the subquery (OFFSET 0 keeps it from being merged into the join, which would detoast it
    // for every part; and a part of a compressed value alone is decompressed from its start). The
    // parts are put in order here: a sort in the server would spill them to disk.
    const { rows } = await this.reading(id, () =>
      this.pool.query<{ start: number; part: Buffer; header: ArchivedHeader; sha256: string }>(
        `SELECT start, substring(archived.body FROM start FOR $3) AS part, archived.header, archived.sha256
         FROM (SELECT header, sha256, body || ''::bytea AS body FROM sb_archive WHERE partition = $1 AND workflow_id = $2 OFFSET 0) AS archived
         CROSS JOIN LATERAL generate_series(1, greatest(octet_length(archived.body), 1), $3) AS start`,
        [this.partition, id, PART_BYTES],
      ),
    );
    rows.sort((a, b) => a.start - b.start);
    const first = rows[0];
    if (!first) return undefined;
    const { workflow, sha256 } = await this.reading(id, () => readDocument(partsOf(rows)));
    if (sha256 !== first.sha256) throw damaged(id, this.where, 'its checksum does not match its row');
    return { v: first.header.v, archivedAt: first.header.archivedAt, workflow };
  }

  async readSummary(id: string): Promise<WorkflowSummary | undefined> {
    const { rows } = await this.reading(id, () => this.pool.query<{ summary: string }>('SELECT summary FROM sb_archive WHERE partition = $1 AND workflow_id = $2', [this.partition, id]));
    const summary = rows[0]?.summary;
    if (summary === undefined) return undefined;
    try {
      return JSON.parse(summary) as WorkflowSummary;
    } catch {
      throw damaged(id, this.where, 'its summary does not parse');
    }
  }

  /** Deletes the rows (retention), then forgets them. */
  remove(ids: readonly string[]): Promise<void> {
    void this.ready();
    return this.serial(async () => {
      if (ids.length === 0) return;
      await this.pool.query('DELETE FROM sb_archive WHERE partition = $1 AND workflow_id = ANY($2)', [this.partition, ids]);
      this.index.delete(ids);
    });
  }

  /**
   * Reads headers from the table again: of `ids` alone (a follower replaying the leader's eviction
   * of those workflows), or of every workflow (what the leader deleted is forgotten too).
   * @example await archive.refresh(['wf-1']); archive.has('wf-1') // true once the leader archived it
   */
  refresh(ids?: readonly string[]): Promise<void> {
    if (ids === undefined && !this.loading) return this.ready();
    void this.ready();
    return this.serial(async () => {
      if (ids === undefined) {
        this.index = await this.readHeaders();
        return;
      }
      const { rows } = await this.pool.query<{ header: ArchivedHeader }>('SELECT header FROM sb_archive WHERE partition = $1 AND workflow_id = ANY($2)', [this.partition, ids]);
      const found = new Set<string>();
      for (const row of rows) {
        const header = headerFromRow(row.header);
        found.add(header.id);
        this.index.put(header);
      }
      this.index.delete(ids.filter((id) => !found.has(id)));
    });
  }

  /** Waits for writes in progress (the pool is the caller's to end). */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  private get where(): string {
    return `sb_archive (partition ${this.partition})`;
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Every header of the partition, in creation order then archiving order (each then lands at the
   * end of the index), put in a new index a slice per turn so that the hub serves meanwhile.
   */
  private async readHeaders(): Promise<HeaderIndex> {
    const { rows } = await this.pool.query<{ header: ArchivedHeader }>(
      `SELECT header FROM sb_archive WHERE partition = $1 ORDER BY (header->>'createdAt')::float8, (header->>'archivedAt')::float8, workflow_id`,
      [this.partition],
    );
    const index = new HeaderIndex();
    const slice = new TimeSlice();
    for (const [count, row] of rows.entries()) {
      index.put(headerFromRow(row.header));
      if (count % HEADERS_PER_LOOK === 0 && slice.spent) await slice.next();
    }
    return index;
  }

  /** Runs a read of a workflow's row; what is damaged, or cannot be read, is named in the error. */
  private async reading<T>(id: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof DamagedPart) throw damaged(id, this.where, error.message);
      throw new HubError('INTERNAL', `archived workflow ${id} cannot be read from ${this.where}: ${(error as Error).message}`);
    }
  }
}

/** The parts of a document as the rows of its read hold them. */
async function* partsOf(rows: ReadonlyArray<{ part: Buffer }>): AsyncGenerator<Buffer> {
  for (const row of rows) yield row.part;
}
