import type { Worker } from 'node:worker_threads';
import { startWorker, workerEntry } from '../worker-threads.ts';

const workerUrl = workerEntry('compaction-worker', import.meta.url);

/** What a compaction did; `pausedMs`: how long a paced one slept. */
export interface Compacted {
  seq: number;
  docs: number;
  pausedMs: number;
}
type Reply = ({ ok: true } & Compacted) | { ok: false; message: string };

/**
 * A worker idle this long is stopped. Its heap (a replay of the journal: a hundred MB or more)
 * is never given back while the thread lives; snapshots that follow each other closely still
 * share one thread.
 */
const IDLE_MS = 5_000;

/**
 * The thread that folds the journal into the snapshot, kept while snapshots follow each other:
 * starting a worker (and, from sources, tsx inside it) was a third of each snapshot's CPU. One
 * job at a time; a worker that dies fails its job and is replaced at the next one; one idle for
 * IDLE_MS is stopped. It holds the process open only while a job runs.
 */
export class CompactionWorker {
  private worker: Worker | undefined;
  /** Shared with the worker: 1 tells a paced job to stop pacing (it sleeps on this word, so it wakes at once). */
  private readonly hurryFlag = new Int32Array(new SharedArrayBuffer(4));
  private job: { resolve: (reply: Compacted) => void; reject: (error: Error) => void } | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;

  /** Compacts `dir` up to segment `uptoSegment` (`paced`: with a bounded share of a core); resolves when the snapshot is on disk. */
  compact(dir: string, uptoSegment: number, paced = false): Promise<Compacted> {
    if (this.job) return Promise.reject(new Error('a compaction is already running'));
    clearTimeout(this.idle);
    const worker = (this.worker ??= this.start());
    return new Promise((resolve, reject) => {
      this.job = { resolve, reject };
      Atomics.store(this.hurryFlag, 0, 0);
      worker.ref();
      worker.postMessage({ dir, uptoSegment, paced });
    });
  }

  /** Lets the running job finish at full speed (the store is closing and nobody is served any more). */
  hurry(): void {
    Atomics.store(this.hurryFlag, 0, 1);
    Atomics.notify(this.hurryFlag, 0);
  }

  /** Stops the thread (after the running job, which the store awaits first). */
  async close(): Promise<void> {
    clearTimeout(this.idle);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    const worker = startWorker(workerUrl, { hurry: this.hurryFlag });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = this.finish(worker);
      if (reply.ok) job?.resolve({ seq: reply.seq, docs: reply.docs, pausedMs: reply.pausedMs });
      else job?.reject(new Error(`compaction failed: ${reply.message}`));
    });
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => this.fail(worker, new Error(`compaction worker exited with code ${code}`)));
    return worker;
  }

  private finish(worker: Worker) {
    const job = this.job;
    this.job = undefined;
    worker.unref();
    if (this.worker === worker) this.idle = setTimeout(() => void this.close(), IDLE_MS).unref();
    return job;
  }

  /** The worker is gone: its job fails, and the next one starts a new worker. */
  private fail(worker: Worker, error: Error): void {
    if (this.worker === worker) this.worker = undefined;
    this.finish(worker)?.reject(error);
  }
}
