import type { DocKey, StoredDoc } from '../domain/machinery/state.ts';
import type { WorkflowArchive } from './archive.ts';
import type { Recovered } from './recovery.ts';
import type { ItemSpans } from './item-spans.ts';
import type { ResumePoint } from './manifest.ts';
import type { SnapshotPart } from './snapshot-writer.ts';

/** Every document as the journal holds it, and the sequence number of the last record written. */
export interface CurrentDocs {
  seq: number;
  docs: Array<[DocKey, StoredDoc]>;
}

/**
 * Every document at record `seq`, for a snapshot written over many turns while the hub goes on:
 * each with its JSON at its version (pinned: see pinned-json.ts), or without, where the store said
 * it holds that version already (`holdsDoc`).
 */
export interface PinnedDocs {
  seq: number;
  docs: SnapshotPart[];
  /** Told when the snapshot could not be written: the documents it serialised count as changed again. */
  failed(): void;
}

/** What a store tells about a snapshot it takes (for the hub's log); a failure is a warning instead. */
export type SnapshotEvent =
  | { phase: 'started'; from: 'memory' | 'journal'; /** The journal it folds in. */ journalBytes: number }
  | {
      phase: 'finished';
      from: 'memory' | 'journal';
      seq: number;
      docs: number;
      /** Of those, how many were copied unchanged from the previous snapshot (pinned snapshots). */
      copied?: number;
      /** Of the items (work orders, ...) of the others, how many were copied unchanged and how many serialised (pinned snapshots). */
      items?: { copied: number; serialised: number };
      /** When known. */
      bytes?: number | undefined;
      ms: number;
    };

/**
 * Where the hub keeps its state. The embedded store (journal plus lowdb snapshot) implements it;
 * a PostgreSQL store for multi-node hubs can replace it without touching the domain.
 */
export type { ResumePoint } from './manifest.ts';

export interface Store {
  /** Takes the data directory and rebuilds the documents from disk. Called once. */
  open(): Promise<Recovered>;
  /** Where finished workflows go when they leave memory; usable once `open` has resolved. */
  readonly archive: WorkflowArchive;
  /**
   * Durably appends encoded records (journal lines, numbered from `firstSeq` on) in one write;
   * rejects (leaving nothing stored) on failure.
   */
  append(records: string | Uint8Array, firstSeq: number): Promise<void>;
  /**
   * Whether `append` wants each record's place in its batch on its line (encodeRecords; absent:
   * no): a file journal tells by it a batch a power loss cut into from damage to acknowledged records.
   */
  readonly marksBatches?: boolean;
  /** Whether the journal has grown enough for a snapshot (see snapshotThreshold) and none is being taken. */
  snapshotDue(): boolean;
  /**
   * Starts a snapshot in the background: written from `current` (serialised before this returns)
   * when given, else rebuilt from the journal without taking the CPU the hub's clients need.
   * The hub calls it after a write while `snapshotDue()`; a store that is busy may do nothing.
   */
  startSnapshot(current?: CurrentDocs): void;
  /**
   * Whether the snapshot on disk holds document `key` at version `v`, so that a pinned snapshot
   * may copy it. A store without this takes no pinned snapshots.
   */
  holdsDoc?: ((key: DocKey, v: number) => boolean) | undefined;
  /**
   * Where the items of document `key` lie in the snapshot on disk, when the store knows: a pinned
   * snapshot copies those that did not change since it was pinned.
   */
  itemsOnDisk?: ((key: DocKey) => { json: number; items: ItemSpans } | undefined) | undefined;
  /**
   * Starts a snapshot written from `pinned` (the documents as the journal will hold them once the
   * write under way is done, which the hub has awaited before calling this). Like startSnapshot,
   * called while `snapshotDue()`; a store that is busy lets the documents go and does nothing.
   */
  startPinnedSnapshot?: ((pinned: PinnedDocs) => void) | undefined;
  /** Folds the journal into a new snapshot now, waiting for it. */
  snapshot(): Promise<void>;
  /** Why the store refuses every write until the hub restarts, or undefined while it writes (for /healthz). */
  writeFailure?: (() => string | undefined) | undefined;
  /**
   * Finishes background work, writes a final snapshot (from `current` when given: every document
   * as the journal holds it) and releases the directory. `resume`: the patch stream's, which a store
   * may hand back from the next `open` (`Recovered.resume`) only if that start's state is exactly
   * this one, every version monitors were sent included; a store that cannot vouch for it ignores it.
   */
  close(current?: CurrentDocs, resume?: ResumePoint): Promise<void>;
}

/** When a store takes snapshots: after `afterBytes` of journal, or `journalRatio` times the last snapshot's size when that is more. */
export interface SnapshotTrigger {
  snapshotAfterBytes: number;
  snapshotJournalRatio?: number;
}

/** The journal size at which a snapshot is due, for a last snapshot of `snapshotBytes`. */
export function snapshotThreshold(trigger: SnapshotTrigger, snapshotBytes: number): number {
  return Math.max(trigger.snapshotAfterBytes, (trigger.snapshotJournalRatio ?? 0) * snapshotBytes);
}
