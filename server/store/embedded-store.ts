import { statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowArchive } from './archive.ts';
import { FileArchive } from './archive-files.ts';
import type { ItemSpans } from './item-spans.ts';
import { removeDeadBackups } from './backup-staging.ts';
import { CompactionWorker } from './compaction.ts';
import { Journal, listSegments, segmentName } from './journal.ts';
import { acquireLock } from './lock.ts';
import { writeManifest } from './manifest.ts';
import { recover, type Recovered } from './recovery.ts';
import { replaceSnapshot, SNAPSHOT_FILE, snapshotOnDisk, snapshotText, type SnapshotIndex } from './snapshot.ts';
import { removeUnfinishedSnapshot, writeSnapshot } from './snapshot-writer.ts';
import { snapshotThreshold, type CurrentDocs, type PinnedDocs, type SnapshotEvent, type SnapshotTrigger, type ResumePoint, type Store } from './store.ts';
import { makeDirectory } from '../make-directory.ts';

export interface EmbeddedStoreOptions extends SnapshotTrigger {
  dataDir: string;
  /** fdatasync after every batch: survives power loss, costs a disk flush per batch. */
  fsync: boolean;
  /** Start from the records before a damaged journal record, deleting it and all after it (said in a warning). */
  truncateDamagedJournal?: boolean;
  onWarning: (message: string) => void;
  /** Told when a snapshot starts and when it is on disk. */
  onSnapshot?: (event: SnapshotEvent) => void;
}

/** The size of a file in bytes, or undefined when it cannot be read. */
function sizeOf(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

/** The embedded store: an append-only journal of patches plus a lowdb snapshot, compacted in a worker. */
export class EmbeddedStore implements Store {
  private journal: Journal | undefined;
  private files: FileArchive | undefined;
  private release: (() => void) | undefined;
  private compaction: Promise<void> | undefined;
  private readonly compactor = new CompactionWorker();
  /** The append being written; the journal may not rotate under it. */
  private writing: Promise<void> | undefined;
  /** Where each document lies in the snapshot on disk, when this store wrote it (a pinned snapshot copies from there). */
  private index: SnapshotIndex | undefined;
  /** The size of the snapshot on disk, in bytes. */
  private snapshotBytes = 0;
  /** After a rotation failed, the journal size the next try waits for: not at every write, each with its warning. */
  private retryAtBytes = 0;

  constructor(private readonly options: EmbeddedStoreOptions) {}

  /**
   * Only with fsync: then a batch is written once the one before is on disk, and a power loss can
   * damage only the last, unacknowledged one. Without, it may damage acknowledged batches: refused.
   */
  get marksBatches(): boolean {
    return this.options.fsync;
  }

  /** The archive in `<dataDir>/archive/`. */
  get archive(): WorkflowArchive {
    if (!this.files) throw new Error('store is not open');
    return this.files;
  }

  async open(): Promise<Recovered> {
    makeDirectory(this.options.dataDir);
    this.release = acquireLock(this.options.dataDir, this.options.onWarning);
    try {
      const dir = this.options.dataDir;
      // A killed backup's hard links would keep the space of files compaction has replaced until the next backup.
      for (const name of await removeDeadBackups(dir)) this.options.onWarning(`removed ${name}: the staging folder of a backup that did not finish`);
      const recovered = await recover(dir, { truncateDamaged: this.options.truncateDamagedJournal ?? false });
      await removeUnfinishedSnapshot(dir);
      for (const warning of recovered.warnings) this.options.onWarning(warning);
      // The segments recovery replayed are not in the snapshot: a run killed before its journal
      // reached the threshold leaves them, and they count toward the next one (else a hub that
      // crashes often would never snapshot, and each start would replay more).
      const carried = listSegments(dir).reduce((bytes, n) => bytes + statSync(join(dir, segmentName(n))).size, 0);
      this.journal = Journal.create(dir, recovered.lastSegment, this.options.fsync, carried);
      this.index = recovered.snapshotIndex;
      let snapshot = recovered.snapshot;
      if (recovered.oldSnapshot) {
        // A snapshot without a checksum (written before manifests) is replaced by one with it.
        const next = snapshotText({ segment: recovered.lastSegment, seq: recovered.seq, docs: [...recovered.docs] });
        await replaceSnapshot(dir, next);
        snapshot = next.ref;
      }
      const current = this.journal.currentSegment;
      await writeManifest(dir, { format: 1, snapshots: [snapshot], segment: current });
      // Segments left empty by earlier runs hold nothing; the manifest no longer names them.
      for (const n of listSegments(dir)) if (n < current && statSync(join(dir, segmentName(n))).size === 0) unlinkSync(join(dir, segmentName(n)));
      this.snapshotBytes = sizeOf(join(dir, SNAPSHOT_FILE)) ?? 0;
      this.files = await FileArchive.open(dir, this.options.onWarning);
      return recovered;
    } catch (error) {
      this.release();
      throw error;
    }
  }

  async append(records: string | Uint8Array): Promise<void> {
    const journal = this.requireJournal();
    const writing = journal.append(records);
    this.writing = writing;
    try {
      await writing;
    } finally {
      if (this.writing === writing) this.writing = undefined;
    }
  }

  /** Whether the journal reached its threshold (snapshotThreshold), with no snapshot or write in progress. */
  snapshotDue(): boolean {
    return this.journal !== undefined && this.journal.size >= Math.max(snapshotThreshold(this.options, this.snapshotBytes), this.retryAtBytes) && !this.compaction && !this.writing;
  }

  /** Starts a background snapshot (from `current`, or paced replay); does nothing while a snapshot or write is in progress. */
  startSnapshot(current?: CurrentDocs): void {
    // Busy, the documents would have moved on by the time it could start; the hub asks again later.
    if (this.compaction || this.writing) return;
    void this.compact(true, current);
  }

  /** Why every write is refused until a restart: a refused batch could not be cut back off the journal. */
  writeFailure(): string | undefined {
    return this.journal?.failure?.message;
  }

  /** Whether the snapshot on disk holds document `key` at version `v` (so a pinned snapshot may copy it). */
  holdsDoc(key: string, v: number): boolean {
    return this.index?.get(key)?.v === v;
  }

  /** Where the items of document `key` lie in the snapshot on disk, when this store wrote it. */
  itemsOnDisk(key: string): { json: number; items: ItemSpans } | undefined {
    const span = this.index?.get(key);
    return span?.items && { json: span.json, items: span.items };
  }

  /** Starts a snapshot from pinned documents, copying from the snapshot on disk those it holds unchanged. */
  startPinnedSnapshot(pinned: PinnedDocs): void {
    const journal = this.requireJournal();
    if (this.compaction || this.writing || journal.size === 0) {
      for (const part of pinned.docs) part.json?.release();
      pinned.failed();
      return;
    }
    const journalBytes = journal.size;
    const upto = this.rotate(journal);
    if (upto === undefined) {
      for (const part of pinned.docs) part.json?.release();
      pinned.failed();
      return;
    }
    const started = performance.now();
    this.options.onSnapshot?.({ phase: 'started', from: 'memory', journalBytes });
    const copied = pinned.docs.filter((part) => !part.json).length;
    this.compaction = writeSnapshot(this.options.dataDir, upto, pinned.seq, pinned.docs, this.index)
      .then(
        ({ index, bytes, items }) => {
          this.index = index;
          this.snapshotBytes = bytes;
          this.options.onSnapshot?.({ phase: 'finished', from: 'memory', seq: pinned.seq, docs: pinned.docs.length, copied, items, bytes, ms: performance.now() - started });
        },
        async (error: Error) => {
          pinned.failed();
          // It may have failed after the new file took the old one's place: what the index says of either is no longer sure.
          this.index = undefined;
          await this.snapshotFailed(error);
        },
      )
      .finally(() => (this.compaction = undefined));
  }

  /** Folds the journal into a new snapshot at full speed, after any in progress. */
  snapshot(): Promise<void> {
    return this.compact(false);
  }

  /** Resolves once the snapshot being taken, if any, is on disk (or has failed and been reported). */
  async snapshotSettled(): Promise<void> {
    while (this.compaction) await this.compaction;
  }

  /**
   * Rotates the journal and writes a snapshot of everything before the new segment: from `current`
   * (serialised here, synchronously), or by replaying the journal in the compaction worker, paced
   * when `paced`. A failed snapshot leaves the journal in place.
   */
  private compact(paced: boolean, current?: CurrentDocs): Promise<void> {
    if (this.compaction) return this.compaction.then(() => this.compact(paced));
    // Rotating under a write in flight would land its bytes, and the next ones, at the old offset of the new segment.
    if (this.writing) return this.writing.then(() => this.compact(paced), () => this.compact(paced));
    const journal = this.requireJournal();
    if (journal.size === 0) return Promise.resolve();
    const journalBytes = journal.size;
    const upto = this.rotate(journal);
    if (upto === undefined) return Promise.resolve();
    const started = performance.now();
    const from = current ? 'memory' : 'journal';
    this.options.onSnapshot?.({ phase: 'started', from, journalBytes });
    const dir = this.options.dataDir;
    // The file is replaced, and where its documents lie is not kept: a later pinned snapshot serialises them all.
    this.index = undefined;
    const job = current
      ? replaceSnapshot(dir, snapshotText({ segment: upto, seq: current.seq, docs: current.docs })).then(() => ({ seq: current.seq, docs: current.docs.length }))
      : this.compactor.compact(dir, upto, paced);
    this.compaction = job
      .then(
        ({ seq, docs }) => {
          const bytes = sizeOf(join(dir, SNAPSHOT_FILE));
          this.snapshotBytes = bytes ?? 0;
          this.options.onSnapshot?.({ phase: 'finished', from, seq, docs, bytes, ms: performance.now() - started });
        },
        (error: Error) => this.snapshotFailed(error),
      )
      .then(() => undefined)
      .finally(() => (this.compaction = undefined));
    return this.compaction;
  }

  async close(current?: CurrentDocs, resume?: ResumePoint): Promise<void> {
    if (!this.journal) return;
    try {
      this.compactor.hurry();
      await this.compaction;
      // From memory when the hub can hand it over: replaying what the paced snapshots left behind could take a minute.
      if (this.journal.size > 0) await this.compact(false, current);
      await this.compactor.close();
      const segment = this.journal.currentSegment;
      const stuck = this.journal.failure !== undefined;
      if (this.journal.close()) {
        // A clean stop leaves the snapshot alone: the manifest stops naming the empty segment before it
        // goes, and names the newest one left with records (the last snapshot failed). Not simply the
        // one before: an empty one a crash left was deleted at start, and a start would miss it.
        const dir = this.options.dataDir;
        const onDisk = await snapshotOnDisk(dir);
        const kept = listSegments(dir).filter((n) => n < segment);
        // The epoch is kept only when the snapshot, written and flushed, holds everything: no journal
        // is left, whose tail an OS crash could take without fsync, and no failed write left doubt.
        const keep = resume !== undefined && kept.length === 0 && !stuck ? { epoch: resume.epoch, deleted: [...resume.deleted] } : {};
        await writeManifest(dir, { format: 1, snapshots: [onDisk], segment: Math.max(onDisk?.segment ?? 0, ...kept), ...keep });
        unlinkSync(join(dir, segmentName(segment)));
      }
    } finally {
      // Even a stop that failed (a full disk) writes nothing more here: the next hub may take the directory.
      this.journal = undefined;
      await this.files?.close();
      const release = this.release;
      this.release = undefined;
      release?.();
    }
  }

  /**
   * After a snapshot failed, its rotation left the manifest naming a segment older than the one
   * written to: named now, so that a start missing it (or a segment of the journal kept) refuses.
   */
  private async snapshotFailed(error: Error): Promise<void> {
    this.options.onWarning(`snapshot failed, the journal is kept: ${error.message}`);
    const journal = this.journal;
    if (!journal) return;
    const dir = this.options.dataDir;
    try {
      await writeManifest(dir, { format: 1, snapshots: [await snapshotOnDisk(dir)], segment: journal.currentSegment });
    } catch (cause) {
      this.options.onWarning(`manifest ${join(dir, 'manifest.json')} could not name journal segment ${journal.currentSegment} (${(cause as Error).message}); a start would not miss that segment if it were gone`);
    }
  }

  /** Starts the next journal segment for a snapshot and returns the closed one; undefined, with a warning, when it cannot be created (writes go on in the current one). */
  private rotate(journal: Journal): number | undefined {
    try {
      const closed = journal.rotate();
      this.retryAtBytes = 0;
      return closed;
    } catch (error) {
      this.options.onWarning(`snapshot failed, the journal is kept: ${(error as Error).message}`);
      // As after a snapshot that failed once rotated: the next waits for as much journal again.
      this.retryAtBytes = journal.size + this.options.snapshotAfterBytes;
      return undefined;
    }
  }

  private requireJournal(): Journal {
    if (!this.journal) throw new Error('store is not open');
    return this.journal;
  }
}
