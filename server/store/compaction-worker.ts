import { parentPort, workerData } from 'node:worker_threads';
import { compact } from './recovery.ts';

/**
 * A paced compaction works at most this share of the time. Replaying a 32 MB journal takes about
 * a second of CPU; unpaced, on a 2-core machine it took the core the hub's clients needed, and at
 * a quarter of a core it still lengthened the assignment tail. The cost-based delay of
 * PostgreSQL's autovacuum is the same idea.
 */
const DUTY = 0.1;
const WORK_SLICE_MS = 5;
/** Set to 1 by CompactionWorker.hurry(): stop pacing (the sleep below wakes on it). */
const hurry = (workerData as { hurry: Int32Array }).hurry;

/** Called per replayed record: after each slice of work, sleeps (without CPU) for nine times as long. */
class Pacer {
  /** Time spent asleep, ms. */
  pausedMs = 0;
  private sliceStart = performance.now();
  private count = 0;
  readonly onRecord = () => {
    if (++this.count % 64 !== 0 || Atomics.load(hurry, 0) === 1) return;
    const worked = performance.now() - this.sliceStart;
    if (worked < WORK_SLICE_MS) return;
    const asleep = performance.now();
    Atomics.wait(hurry, 0, 0, worked * (1 / DUTY - 1));
    this.sliceStart = performance.now();
    this.pausedMs += this.sliceStart - asleep;
  };
}

/** Worker entry: for each `{ dir, uptoSegment, paced }` received, compacts and reports back. */
parentPort?.on('message', ({ dir, uptoSegment, paced }: { dir: string; uptoSegment: number; paced: boolean }) => {
  const pacer = paced ? new Pacer() : undefined;
  compact(dir, uptoSegment, pacer?.onRecord).then(
    (result) => parentPort?.postMessage({ ok: true, ...result, pausedMs: pacer?.pausedMs ?? 0 }),
    (error: Error) => parentPort?.postMessage({ ok: false, message: error.message }),
  );
});
