import type { Recovered } from '../../server/store/recovery.ts';
import type { Store } from '../../server/store/store.ts';

/** A store that keeps nothing: for tests of the hub core that need no disk. */
export class MemoryStore implements Store {
  appended = 0;
  async open(): Promise<Recovered> {
    return { docs: new Map(), seq: 0, lastSegment: 0, warnings: [] };
  }
  async append(): Promise<void> {
    this.appended++;
  }
  async snapshot(): Promise<void> {}
  async close(): Promise<void> {}
}
