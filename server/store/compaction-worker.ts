import { parentPort, workerData } from 'node:worker_threads';
import { compact } from './recovery.ts';

/** Worker entry: compacts `workerData.dir` up to `workerData.uptoSegment` and reports back. */
const { dir, uptoSegment } = workerData as { dir: string; uptoSegment: number };
compact(dir, uptoSegment).then(
  (result) => parentPort?.postMessage({ ok: true, ...result }),
  (error: Error) => parentPort?.postMessage({ ok: false, message: error.message }),
);
