import { mkdirSync } from 'node:fs';
import { CompactionWorker } from './compaction.ts';
import { Journal } from './journal.ts';
import { acquireLock } from './lock.ts';
import { recover, type Recovered } from './recovery.ts';
import type { Store } from './store.ts';

export interface EmbeddedStoreOptions {
  dataDir: string;
  /** fdatasync after every batch: survives power loss, costs a disk flush per batch. */
  fsync: boolean;
  /** Start a background snapshot once the journal holds this many bytes. */
  snapshotAfterBytes: number;
  onWarning: (message: string) => void;
}

/** The embedded store: an append-only journal of patches plus a lowdb snapshot, compacted in a worker. */
export class EmbeddedStore implements Store {
  private journal: Journal | undefined;
  private release: (() => void) | undefined;
  private compaction: Promise<void> | undefined;
  private readonly compactor = new CompactionWorker();
  /** The append being written; the journal may not rotate under it. */
  private writing: Promise<void> | undefined;

  constructor(private readonly options: EmbeddedStoreOptions) {}

  async open(): Promise<Recovered> {
    mkdirSync(this.options.dataDir, { recursive: true });
    this.release = acquireLock(this.options.dataDir);
    try {
      const recovered = await recover(this.options.dataDir);
      for (const warning of recovered.warnings) this.options.onWarning(warning);
      this.journal = Journal.create(this.options.dataDir, recovered.lastSegment, this.options.fsync);
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
    // Paced: a snapshot taken while the hub serves must not take the CPU its clients need.
    if (journal.size >= this.options.snapshotAfterBytes && !this.compaction) void this.compact(true).catch(() => undefined);
  }

  snapshot(): Promise<void> {
    return this.compact(false);
  }

  private compact(paced: boolean): Promise<void> {
    if (this.compaction) return this.compaction.then(() => this.compact(paced));
    // Rotating under a write in flight would land its bytes, and the next ones, at the old offset of the new segment.
    if (this.writing) return this.writing.then(() => this.compact(paced), () => this.compact(paced));
    const journal = this.requireJournal();
    if (journal.size === 0) return Promise.resolve();
    const upto = journal.rotate();
    this.compaction = this.compactor
      .compact(this.options.dataDir, upto, paced)
      .then(
        () => undefined,
        (error: Error) => this.options.onWarning(`snapshot failed, the journal is kept: ${error.message}`),
      )
      .finally(() => (this.compaction = undefined));
    return this.compaction;
  }

  async close(): Promise<void> {
    if (!this.journal) return;
    this.compactor.hurry();
    await this.compaction;
    if (this.journal.size > 0) await this.snapshot();
    await this.compactor.close();
    this.journal.close();
    this.journal = undefined;
    this.release?.();
  }

  private requireJournal(): Journal {
    if (!this.journal) throw new Error('store is not open');
    return this.journal;
  }
}
