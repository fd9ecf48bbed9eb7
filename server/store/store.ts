import type { Recovered } from './recovery.ts';

/**
 * Where the hub keeps its state. The embedded store (journal plus lowdb snapshot) implements it;
 * a PostgreSQL store for multi-node hubs can replace it without touching the domain.
 */
export interface Store {
  /** Takes the data directory and rebuilds the documents from disk. Called once. */
  open(): Promise<Recovered>;
  /** Durably appends encoded records in one write; rejects (leaving nothing on disk) on failure. */
  append(records: string | Uint8Array): Promise<void>;
  /** Folds the journal into a new snapshot now, waiting for it. */
  snapshot(): Promise<void>;
  /** Finishes background work, writes a final snapshot and releases the directory. */
  close(): Promise<void>;
}
