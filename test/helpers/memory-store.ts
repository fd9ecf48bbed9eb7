import type { Recovered } from '../../server/store/recovery.ts';
import type { Store } from '../../server/store/store.ts';

/** A store that keeps nothing: for tests of the hub core that need no disk. */
export class MemoryStore implements Store {
  /** Records per append, in order. */
  readonly batches: number[] = [];
  async open(): Promise<Recovered> {
    return { docs: new Map(), seq: 0, lastSegment: 0, warnings: [] };
  }
  async append(records: string | Uint8Array): Promise<void> {
    this.batches.push(Buffer.from(records).toString('utf8').split('\n').length - 1);
  }
  snapshotDue(): boolean {
    return false;
  }
  startSnapshot(): void {}
  async snapshot(): Promise<void> {}
  async close(): Promise<void> {}
}
