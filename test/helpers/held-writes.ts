import { EmbeddedStore } from '../../server/index.ts';
import { onTestFinished } from 'vitest';
import { startHub, tempDir } from './hub.ts';
import { deferred } from './wait.ts';
import { diskFull, WrappedStore } from './wrapped-store.ts';

/**
 * An embedded store whose journal writes wait from hold() on: the commands applied meanwhile
 * commit together once release() lets the writes through, or are rolled back when fail() fails
 * them (a disk that filled up mid-write).
 */
export class HeldWrites extends WrappedStore {
  private gate: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Resolves once a write is being held (renewed by each hold()). */
  holding = deferred();

  hold(): void {
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Nobody may be waiting when fail() rejects it.
    promise.catch(() => undefined);
    this.gate = { promise, resolve, reject };
    this.holding = deferred();
  }

  /** Lets the held writes, and every later one, through. */
  release(): void {
    this.gate?.resolve();
    this.gate = undefined;
  }

  /** Fails the held writes; later ones go through. */
  fail(): void {
    this.gate?.reject(diskFull());
    this.gate = undefined;
  }

  override async append(records: string | Uint8Array, firstSeq: number) {
    const gate = this.gate;
    if (gate) {
      this.holding.resolve();
      await gate.promise;
    }
    return this.inner.append(records, firstSeq);
  }
}

/** A hub on an embedded store (no automatic snapshot) whose journal writes can be held; held writes are let through when the test ends. */
export async function hubWithHeldWrites() {
  const dataDir = tempDir();
  const store = new HeldWrites(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
  const hub = await startHub({ dataDir }, { store });
  onTestFinished(() => store.release());
  return { hub, store };
}
