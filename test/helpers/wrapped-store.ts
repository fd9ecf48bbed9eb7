import type { Store } from '../../server/index.ts';
import type { CurrentDocs, ResumePoint } from '../../server/store/store.ts';

/** A store that does what `inner` does; tests extend it to change one part (a write that fails, or waits). */
export class WrappedStore implements Store {
  // Only when the inner store takes pinned snapshots: the hub asks whether these exist.
  holdsDoc?: Store['holdsDoc'];
  startPinnedSnapshot?: Store['startPinnedSnapshot'];
  constructor(protected readonly inner: Store) {
    if (inner.holdsDoc) this.holdsDoc = (key, v) => inner.holdsDoc!(key, v);
    if (inner.startPinnedSnapshot) this.startPinnedSnapshot = (pinned) => inner.startPinnedSnapshot!(pinned);
  }
  get archive() {
    return this.inner.archive;
  }
  get marksBatches() {
    return this.inner.marksBatches === true;
  }
  open() {
    return this.inner.open();
  }
  append(records: string | Uint8Array, firstSeq: number) {
    return this.inner.append(records, firstSeq);
  }
  snapshotDue() {
    return this.inner.snapshotDue();
  }
  startSnapshot(current?: CurrentDocs) {
    this.inner.startSnapshot(current);
  }
  snapshot() {
    return this.inner.snapshot();
  }
  close(current?: CurrentDocs, resume?: ResumePoint) {
    return this.inner.close(current, resume);
  }
}

/** The error a write to a full disk fails with. */
export function diskFull(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
}
