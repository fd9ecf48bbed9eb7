import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './compaction-worker.ts' : './compaction-worker.js', import.meta.url);

/** Starts a worker; TypeScript sources (tests, tsx) get tsx's loader registered inside it first. */
function startWorker(workerData: unknown): Worker {
  if (!workerUrl.pathname.endsWith('.ts')) return new Worker(workerUrl, { workerData });
  // The package exports only a CommonJS path to require.resolve; the ESM entry sits beside it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(workerUrl.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** Compacts the journal into the snapshot in a worker thread; resolves when the snapshot is on disk. */
export function compactInWorker(dir: string, uptoSegment: number): Promise<{ seq: number; docs: number }> {
  return new Promise((resolve, reject) => {
    const worker = startWorker({ dir, uptoSegment });
    let settled = false;
    worker.once('message', (message: { ok: true; seq: number; docs: number } | { ok: false; message: string }) => {
      settled = true;
      if (message.ok) resolve({ seq: message.seq, docs: message.docs });
      else reject(new Error(`compaction failed: ${message.message}`));
      void worker.terminate();
    });
    worker.once('error', (error) => {
      if (!settled) reject(error);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`compaction worker exited with code ${code}`));
    });
  });
}
