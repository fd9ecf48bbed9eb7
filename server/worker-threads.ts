import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * The URL of a worker entry beside `base` (an import.meta.url): `name.ts` when running from
 * sources, `name.js` when built.
 */
export function workerEntry(name: string, base: string): URL {
  return new URL(base.endsWith('.ts') ? `./${name}.ts` : `./${name}.js`, base);
}

/** Starts a worker thread; TypeScript sources (tests, tsx) get tsx's loader registered inside it first. */
export function startWorker(entry: URL, workerData?: unknown): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, { workerData });
  // The package exports only a CommonJS path to require.resolve; the ESM entry sits beside it.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * Gives the calling worker thread the lowest CPU priority, so that its background work (a report,
 * a snapshot) yields the CPU to the hub's event loop and to everything else on the machine whenever
 * both want it. On Linux a priority is per thread (0: the calling one); elsewhere it would lower
 * the whole hub, so it is left alone there.
 */
export function yieldCpuToOthers(): void {
  if (process.platform !== 'linux') return;
  try {
    setPriority(0, 19);
  } catch {
    // Not allowed here (a container without the capability): the work runs at the hub's priority.
  }
}
