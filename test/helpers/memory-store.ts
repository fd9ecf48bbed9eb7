import type { WorkflowSummary } from '../../shared/schemas/summary.ts';
import { HeaderIndex, type ArchivedWorkflow, type WorkflowArchive, type WorkflowToArchive } from '../../server/store/archive.ts';
import { DocumentFromLines } from '../../server/store/archive-lines.ts';
import type { Recovered } from '../../server/store/recovery.ts';
import type { CurrentDocs, Store } from '../../server/store/store.ts';

export interface MemoryStoreOptions {
  /** Each write takes a turn of the event loop, as one waiting for fsync does. */
  slowWrites?: boolean;
  /** A snapshot is due every this many writes (never without). */
  snapshotEvery?: number;
}

/** An archive in memory: each workflow kept as the lines it would be written as (see archive-lines.ts). */
class MemoryArchive implements WorkflowArchive {
  private readonly index = new HeaderIndex();
  private readonly texts = new Map<string, string>();
  private readonly summaries = new Map<string, string>();
  async ready() {}
  get size() {
    return this.index.size;
  }
  get tally() {
    return this.index.tally;
  }
  has(id: string) {
    return this.index.has(id);
  }
  header(id: string) {
    return this.index.get(id);
  }
  headers() {
    return this.index.all();
  }
  async put(entry: WorkflowToArchive, summary: WorkflowSummary) {
    const summaryText = JSON.stringify(summary);
    let text = '';
    for await (const chunk of entry.lines) text += chunk;
    this.texts.set(entry.header.id, text);
    this.summaries.set(entry.header.id, summaryText);
    this.index.put(entry.header);
  }
  async read(id: string): Promise<ArchivedWorkflow | undefined> {
    const text = this.texts.get(id);
    const header = this.index.get(id);
    if (text === undefined || !header) return undefined;
    const document = new DocumentFromLines();
    for (const line of text.split('\n').slice(0, -1)) document.add(line);
    return { v: header.v, archivedAt: header.archivedAt, workflow: document.workflow };
  }
  async readSummary(id: string) {
    const text = this.summaries.get(id);
    return text === undefined ? undefined : (JSON.parse(text) as WorkflowSummary);
  }
  async remove(ids: readonly string[], unlisted?: () => void) {
    this.index.delete(ids);
    for (const id of ids) {
      this.texts.delete(id);
      this.summaries.delete(id);
    }
    unlisted?.();
  }
}

/** A store that keeps nothing: for tests of the state writer that need no disk. */
export class MemoryStore implements Store {
  /** Records per append, in order. */
  readonly batches: number[] = [];
  /** Snapshots started: after how many writes, and whether the hub handed its documents over. */
  readonly snapshots: Array<{ afterWrites: number; fromMemory: boolean }> = [];

  readonly archive: WorkflowArchive = new MemoryArchive();

  constructor(private readonly options: MemoryStoreOptions = {}) {}

  async open(): Promise<Recovered> {
    return { docs: new Map(), seq: 0, lastSegment: 0, warnings: [] };
  }
  async append(records: string | Uint8Array): Promise<void> {
    if (this.options.slowWrites) await new Promise((resolve) => setImmediate(resolve));
    this.batches.push(Buffer.from(records).toString('utf8').split('\n').length - 1);
  }
  /** Due every `snapshotEvery` writes. */
  snapshotDue(): boolean {
    const every = this.options.snapshotEvery;
    return every !== undefined && this.batches.length - (this.snapshots.at(-1)?.afterWrites ?? 0) >= every;
  }
  /** Records the snapshot; it is "written" at once. */
  startSnapshot(current?: CurrentDocs): void {
    this.snapshots.push({ afterWrites: this.batches.length, fromMemory: current !== undefined });
  }
  async snapshot(): Promise<void> {}
  async close(): Promise<void> {}
}
