import { parentPort } from 'node:worker_threads';
import { compact } from './recovery.ts';

/** Worker entry: for each `{ dir, uptoSegment }` received, compacts and reports back. */
parentPort?.on('message', ({ dir, uptoSegment }: { dir: string; uptoSegment: number }) => {
  compact(dir, uptoSegment).then(
    (result) => parentPort?.postMessage({ ok: true, ...result }),
    (error: Error) => parentPort?.postMessage({ ok: false, message: error.message }),
  );
});
