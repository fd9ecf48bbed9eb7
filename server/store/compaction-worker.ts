import { parentPort } from 'node:worker_threads';
import { compact } from './recovery.ts';

/**
 * A paced compaction works at most this share of the time. Replaying a 32 MB journal takes about
 * a second of CPU; unpaced, on a 2-core machine it took the core the hub's clients needed (the
 * hub's ack p99 went from ~15 ms to ~200 ms while it ran). The cost-based delay of PostgreSQL's
 * autovacuum is the same idea.
 */
const DUTY = 0.25;
const WORK_SLICE_MS = 5;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Called per replayed record: after each slice of work, sleeps (without CPU) for three times as long. */
function pacer(): () => void {
  let sliceStart = performance.now();
  let count = 0;
  return () => {
    if (++count % 64 !== 0) return;
    const worked = performance.now() - sliceStart;
    if (worked < WORK_SLICE_MS) return;
    Atomics.wait(sleeper, 0, 0, worked * (1 / DUTY - 1));
    sliceStart = performance.now();
  };
}

/** Worker entry: for each `{ dir, uptoSegment, paced }` received, compacts and reports back. */
parentPort?.on('message', ({ dir, uptoSegment, paced }: { dir: string; uptoSegment: number; paced: boolean }) => {
  compact(dir, uptoSegment, paced ? pacer() : undefined).then(
    (result) => parentPort?.postMessage({ ok: true, ...result }),
    (error: Error) => parentPort?.postMessage({ ok: false, message: error.message }),
  );
});
