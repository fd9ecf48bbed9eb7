import { bodyQuery } from './pg-pool.ts';
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { HubError } from '../../../shared/errors.ts';
import type { WorkflowSummary } from '../../../shared/schemas/summary.ts';
import { workflowHeader } from '../../../shared/schemas/workflow.ts';
import { TimeSlice } from '../../time-slice.ts';
import { archivedHeader, damaged, HeaderIndex, unreadable, type ArchivedHeader, type ArchiveTally, type ArchivedWorkflow, type WorkflowArchive, type WorkflowToArchive } from '../archive.ts';
import { DamagedPart, readDocument } from '../archive-lines.ts';
import { SharedLoad } from '../shared-load.ts';
import { JOURNAL_CHANNEL, type Fence } from './pg-journal.ts';

/**
 * A document is read back in parts of this many bytes, a row each: each part's hex text (how
 * PostgreSQL sends bytea) is decoded as it arrives, in well under a millisecond. A 26 MB document
 * read as one value held the event loop 0.3 to 1 s (on a busy two-core machine), in parts at most 50 ms.
 */
const PART_BYTES = 256 * 1024;
/** What follows the partition in the notice of deleted archived workflows (see archiveDeletedNotice). */
const DELETED = 'archive-deleted';
/** Headers put in the index between two looks at the clock while the archive loads. */
const HEADERS_PER_LOOK = 64;

/** What jsonb cannot hold in a string (PostgreSQL refuses the row): NUL, and a surrogate without its pair. */
const NOT_JSONB = /\u0000|\p{Cs}/u;

/**
 * The header's JSON for its jsonb column. A query jsonb cannot hold (the hub takes any text) goes
 * as its JSON text, marked `userQueryJson`, rather than leave the workflow unarchivable.
 */
function rowHeader(header: ArchivedHeader): string {
  if (!NOT_JSONB.test(header.userQuery)) return JSON.stringify(header);
  return JSON.stringify({ ...header, userQuery: JSON.stringify(header.userQuery), userQueryJson: true });
}

/** The header as a row holds it (jsonb: its keys reordered), in the order headerOf gives; undefined when the row's is not one. */
function headerFromRow(stored: unknown): ArchivedHeader | undefined {
  const header = archivedHeader(stored);
  if (!header) return undefined;
  const { userQueryJson } = header as ArchivedHeader & { userQueryJson?: unknown };
  let { userQuery } = header;
  if (userQueryJson === true) {
    try {
      userQuery = JSON.parse(userQuery) as string;
    } catch {
      return undefined;
    }
    if (typeof userQuery !== 'string') return undefined;
  }
  return { ...workflowHeader({ ...header, userQuery }), v: header.v, archivedAt: header.archivedAt };
}

/**
 * Archive writes are fenced as journal appends are (pg-journal.ts): the lease row is read FOR
 * SHARE and the write happens only while it names this node and epoch, so a leader that was
 * paused and lost its lease cannot put back an older copy of a workflow, or delete one, after
 * the new leader wrote it. Each statement answers whether the lease was held.
 */
const LEASE = `SELECT 1 FROM sb_lease WHERE partition = $1 AND owner = $2 AND epoch = $3 FOR SHARE`;
const PUT = `
WITH lease AS (${LEASE}), put AS (
  INSERT INTO sb_archive (partition, workflow_id, header, summary, body, sha256)
  SELECT $1, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 FROM lease)
  ON CONFLICT (partition, workflow_id) DO UPDATE SET header = EXCLUDED.header, summary = EXCLUDED.summary, body = EXCLUDED.body, sha256 = EXCLUDED.sha256
  RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM put) AS held`;
/** Deletions have no journal record: followers are woken on the journal's channel to read the headers again. */
const REMOVE = `
WITH lease AS (${LEASE}), gone AS (
  DELETE FROM sb_archive WHERE partition = $1 AND workflow_id = ANY($4) AND EXISTS (SELECT 1 FROM lease)
  RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM lease) AS held, CASE WHEN EXISTS (SELECT 1 FROM gone) THEN pg_notify('${JOURNAL_CHANNEL}', $1 || ' ${DELETED}') END AS notified`;

/** The payload on the journal's channel that says the leader deleted archived workflows of `partition`. */
export function archiveDeletedNotice(partition: string): string {
  return `${partition} ${DELETED}`;
}

/** What the archive needs of its store: the lease it writes under, and where to say what it left out. */
export interface PgArchiveContext {
  fence: () => Fence | undefined;
  onWarning: (message: string) => void;
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
  private readonly loading = new SharedLoad();
  private loaded = false;
  /** Workflows whose row's header is not one: archived (their ids are taken), read back as damaged. */
  private damagedIds = new Set<string>();
  /** Writes and reloads in order, one at a time: a reload never misses a write, nor a write a reload. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly pool: Pool,
    private readonly partition: string,
    private readonly context: PgArchiveContext,
  ) {}

  /**
   * Opens the archive of `partition`, reading the ids of its workflows (so that `has` is exact
   * from now on); their headers are read later, by `ready()`, so that start-up does not grow with
   * the archive as much.
   * @example const archive = await PgArchive.open(pool, 'main', { fence: () => store.fence, onWarning }); await archive.ready();
   */
  static async open(pool: Pool, partition: string, context: PgArchiveContext): Promise<PgArchive> {
    const archive = new PgArchive(pool, partition, context);
    const { rows } = await pool.query<{ workflow_id: string }>('SELECT workflow_id FROM sb_archive WHERE partition = $1', [partition]);
    archive.ids = new Set(rows.map((row) => row.workflow_id));
    return archive;
  }

  /** Reads every header, at the first call; until it resolves `size`, `header` and `headers` are incomplete. */
  ready(): Promise<void> {
    // First in the queue: writes and reloads wait until the headers are read.
    return this.loading.run(() =>
      this.serial(async () => {
        this.index = await this.readHeaders();
        this.ids = undefined;
        this.loaded = true;
      }),
    );
  }

  get size(): number {
    return this.index.size;
  }
  get tally(): ArchiveTally {
    return this.index.tally;
  }
  /** Whether the workflow is archived, as this node knows it (a follower: as of its last refresh). */
  has(id: string): boolean {
    return this.ids?.has(id) ?? (this.index.has(id) || this.damagedIds.has(id));
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
      const fence = this.writable();
      const { rows } = await this.pool.query<{ held: boolean }>(
        bodyQuery(PUT, [this.partition, fence.owner, fence.epoch, entry.header.id, rowHeader(entry.header), summaryText, Buffer.concat(parts), hash.digest('hex')]),
      );
      if (!rows[0]?.held) throw notLeading();
      this.damagedIds.delete(entry.header.id);
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
        bodyQuery(
          `SELECT start, substring(archived.body FROM start FOR $3) AS part, archived.header, archived.sha256
           FROM (SELECT header, sha256, body || ''::bytea AS body FROM sb_archive WHERE partition = $1 AND workflow_id = $2 OFFSET 0) AS archived
           CROSS JOIN LATERAL generate_series(1, greatest(octet_length(archived.body), 1), $3) AS start`,
          [this.partition, id, PART_BYTES],
        ),
      ),
    );
    rows.sort((a, b) => a.start - b.start);
    const first = rows[0];
    if (!first) return undefined;
    const header = headerFromRow(first.header);
    if (!header) throw damaged(id, this.where, 'its header is not one');
    const { workflow, sha256 } = await this.reading(id, () => readDocument(partsOf(rows)));
    if (sha256 !== first.sha256) throw damaged(id, this.where, 'its checksum does not match its row');
    return { v: header.v, archivedAt: header.archivedAt, workflow };
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
  remove(ids: readonly string[], unlisted?: () => void): Promise<void> {
    void this.ready();
    return this.serial(async () => {
      const fence = this.writable();
      if (ids.length === 0) return unlisted?.();
      const { rows } = await this.pool.query<{ held: boolean }>(REMOVE, [this.partition, fence.owner, fence.epoch, ids]);
      if (!rows[0]?.held) throw notLeading();
      this.index.delete(ids);
      for (const id of ids) this.damagedIds.delete(id);
      unlisted?.();
    });
  }

  /**
   * Reads headers from the table again: of `ids` alone (a follower replaying the leader's eviction
   * of those workflows), or of every workflow (what the leader deleted is forgotten too). Resolves
   * with the workflows found deleted (retention and prune leave no record to tell followers by).
   * @example await archive.refresh(['wf-1']); archive.has('wf-1') // true once the leader archived it
   */
  refresh(ids?: readonly string[]): Promise<string[]> {
    if (ids === undefined && !this.loading.started) return this.ready().then(() => []);
    void this.ready();
    return this.serial(async () => {
      if (ids === undefined) {
        // Known here before (listed, or set apart as damaged) and gone now.
        const before = [...this.index.all().map((header) => header.id), ...this.damagedIds];
        this.index = await this.readHeaders();
        return before.filter((id) => !this.has(id));
      }
      const { rows } = await this.pool.query<{ workflow_id: string; header: unknown }>('SELECT workflow_id, header FROM sb_archive WHERE partition = $1 AND workflow_id = ANY($2)', [this.partition, ids]);
      const found = new Set<string>();
      for (const row of rows) {
        this.listed(row.workflow_id, row.header);
        found.add(row.workflow_id);
      }
      // Rows the leader deleted: whether listed or set apart as damaged, they are gone.
      const gone = ids.filter((id) => !found.has(id));
      this.index.delete(gone);
      for (const id of gone) this.damagedIds.delete(id);
      return gone;
    });
  }

  /** Waits for writes in progress (the pool is the caller's to end). */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  private get where(): string {
    return `sb_archive (partition ${this.partition})`;
  }

  /** The lease to write under, once the headers are read; UNAVAILABLE otherwise (nothing is written). */
  private writable(): Fence {
    if (!this.loaded) throw new HubError('UNAVAILABLE', `the archive's headers in ${this.where} could not be read; nothing was archived or deleted`);
    const fence = this.context.fence();
    if (!fence) throw notLeading();
    return fence;
  }

  /** The header of a row, listed; a row whose header is not one is kept apart (see damagedIds) and said in a warning. */
  private listed(workflowId: string, stored: unknown, index = this.index): ArchivedHeader | undefined {
    const header = headerFromRow(stored);
    if (header && header.id === workflowId) {
      this.damagedIds.delete(workflowId);
      index.put(header);
      return header;
    }
    index.delete([workflowId]);
    if (!this.damagedIds.has(workflowId)) this.context.onWarning(`archived workflow ${workflowId} in ${this.where} has a damaged header: it is not listed, and reading it answers INTERNAL`);
    this.damagedIds.add(workflowId);
    return undefined;
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Every header of the partition, in the index's order (creation, then id: each then lands at the
   * end of the index), put in a new index a slice per turn so that the hub serves meanwhile.
   */
  private async readHeaders(): Promise<HeaderIndex> {
    // A header that is not one (not an object, a createdAt that is not a number) sorts first instead of failing the query.
    // Ids are ASCII (shared/schemas/common.ts): byte order ("C") is JavaScript's order of them.
    // Every archived workflow's: as long as a body, for an archive that retention keeps large.
    const { rows } = await this.pool.query<{ workflow_id: string; header: unknown }>(
      bodyQuery(
        `SELECT workflow_id, header FROM sb_archive WHERE partition = $1
         ORDER BY CASE WHEN jsonb_typeof(header->'createdAt') = 'number' THEN (header->>'createdAt')::float8 END NULLS FIRST,
           workflow_id COLLATE "C"`,
        [this.partition],
      ),
    );
    const index = new HeaderIndex();
    const slice = new TimeSlice();
    const found = new Set<string>();
    for (const [count, row] of rows.entries()) {
      this.listed(row.workflow_id, row.header, index);
      found.add(row.workflow_id);
      if (count % HEADERS_PER_LOOK === 0 && slice.spent) await slice.next();
    }
    for (const id of this.damagedIds) if (!found.has(id)) this.damagedIds.delete(id);
    return index;
  }

  /** Runs a read of a workflow's row; what is damaged, or cannot be read, is named in the error. */
  private async reading<T>(id: string, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof DamagedPart) throw damaged(id, this.where, error.message);
      throw unreadable(id, this.where, error as Error);
    }
  }
}

/** The parts of a document as the rows of its read hold them. */
async function* partsOf(rows: ReadonlyArray<{ part: Buffer }>): AsyncGenerator<Buffer> {
  for (const row of rows) yield row.part;
}

/** What a write answers when this node does not hold the lease under its epoch: nothing was written. */
function notLeading(): HubError {
  return new HubError('UNAVAILABLE', 'this node no longer holds the leadership lease: nothing was archived or deleted');
}
