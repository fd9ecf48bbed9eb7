import { PacedWorker } from './paced-worker.ts';
import { workerEntry } from '../worker-threads.ts';

const workerUrl = workerEntry('compaction-worker', import.meta.url);

/** What a compaction did; `pausedMs`: how long a paced one slept. */
export interface Compacted {
  seq: number;
  docs: number;
  pausedMs: number;
}

/** A job for compaction-worker.ts. */
export interface CompactionJob {
  dir: string;
  uptoSegment: number;
  paced: boolean;
}

/** The thread that folds the journal into the snapshot (see PacedWorker). */
export class CompactionWorker extends PacedWorker<CompactionJob, Compacted> {
  constructor() {
    super(workerUrl, 'compaction');
  }

  /** Compacts `dir` up to segment `uptoSegment` (`paced`: with a bounded share of a core); resolves when the snapshot is on disk. */
  compact(dir: string, uptoSegment: number, paced = false): Promise<Compacted> {
    return this.run({ dir, uptoSegment, paced });
  }
}
