/**
 * Long jobs (a compaction: replaying the journal into a snapshot) in a worker thread, paced to a
 * bounded share of a core unless told to hurry. The host side is PacedWorker; a worker entry
 * serves its jobs with servePacedJobs.
 */

import { parentPort, workerData, type Worker } from 'node:worker_threads';
import { startWorker, yieldCpuToOthers } from '../worker-threads.ts';

/** A job for a paced worker; `paced`: with a bounded share of a core. */
export interface PacedJob {
  paced: boolean;
}

/** What every job reports besides its own result: how long a paced one slept, ms. */
export interface PacedResult {
  pausedMs: number;
}

type Reply<Result> = ({ ok: true } & Result) | { ok: false; message: string };

/**
 * A worker idle this long is stopped. Its heap (a replay of the journal: a hundred MB or more)
 * is never given back while the thread lives; jobs that follow each other closely still share
 * one thread.
 */
const IDLE_MS = 5_000;

/**
 * The thread that runs jobs of one kind (`name` says which in errors), kept while jobs follow
 * each other: starting a worker (and, from sources, tsx inside it) was a third of each snapshot's
 * CPU. One job at a time; a worker that dies fails its job and is replaced at the next one; one
 * idle for IDLE_MS is stopped. It holds the process open only while a job runs.
 */
export class PacedWorker<Job extends PacedJob, Result extends PacedResult> {
  private worker: Worker | undefined;
  /** Shared with the worker: 1 tells a paced job to stop pacing (it sleeps on this word, so it wakes at once). */
  private readonly hurryFlag = new Int32Array(new SharedArrayBuffer(4));
  private job: { worker: Worker; resolve: (result: Result) => void; reject: (error: Error) => void } | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly entry: URL,
    private readonly name: string,
  ) {}

  /** Runs a job; resolves with what the worker reports. */
  protected run(job: Job): Promise<Result> {
    if (this.job) return Promise.reject(new Error(`a ${this.name} is already running`));
    clearTimeout(this.idle);
    const worker = (this.worker ??= this.start());
    return new Promise((resolve, reject) => {
      this.job = { worker, resolve, reject };
      Atomics.store(this.hurryFlag, 0, 0);
      worker.ref();
      worker.postMessage(job);
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
    const worker = startWorker(this.entry, { hurry: this.hurryFlag });
    worker.unref();
    worker.on('message', (reply: Reply<Result>) => {
      const job = this.finish(worker);
      if (reply.ok) {
        const { ok: _ok, ...result } = reply;
        job?.resolve(result as unknown as Result);
      } else job?.reject(new Error(`${this.name} failed: ${reply.message}`));
    });
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => this.fail(worker, new Error(`${this.name} worker exited with code ${code}`)));
    return worker;
  }

  private finish(worker: Worker) {
    worker.unref();
    // A thread stopped when idle may exit after the next job started on a new one: that job is not its to end.
    if (this.job?.worker !== worker) return undefined;
    const job = this.job;
    this.job = undefined;
    if (this.worker === worker) this.idle = setTimeout(() => void this.close(), IDLE_MS).unref();
    return job;
  }

  /** The worker is gone: its job fails, and the next one starts a new worker. */
  private fail(worker: Worker, error: Error): void {
    if (this.worker === worker) this.worker = undefined;
    this.finish(worker)?.reject(error);
  }
}

/**
 * A paced job works at most this share of the time. Replaying a 32 MB journal takes about a
 * second of CPU; unpaced, on a 2-core machine it took the core the hub's clients needed, and at a
 * quarter of a core it still lengthened the assignment tail. The cost-based delay of PostgreSQL's
 * autovacuum is the same idea.
 */
const DUTY = 0.1;
const WORK_SLICE_MS = 5;

/** Called per step of work (a replayed record): after each slice of work, sleeps (without CPU) for nine times as long. */
class Pacer {
  /** Time spent asleep, ms. */
  pausedMs = 0;
  private sliceStart = performance.now();
  private count = 0;

  /** `hurry`: set to 1 by PacedWorker.hurry(), which stops pacing (the sleep below wakes on it). */
  constructor(private readonly hurry: Int32Array) {}

  readonly onStep = () => {
    if (++this.count % 64 !== 0 || Atomics.load(this.hurry, 0) === 1) return;
    const worked = performance.now() - this.sliceStart;
    if (worked < WORK_SLICE_MS) return;
    const asleep = performance.now();
    Atomics.wait(this.hurry, 0, 0, worked * (1 / DUTY - 1));
    this.sliceStart = performance.now();
    this.pausedMs += this.sliceStart - asleep;
  };
}

/**
 * Worker side: runs each job PacedWorker posts with `work`, which calls `onStep` (undefined when
 * the job is not paced) after each step, and reports its result with the time paced away.
 */
export function servePacedJobs<Job extends PacedJob, Result extends object>(work: (job: Job, onStep: (() => void) | undefined) => Promise<Result>): void {
  // Pacing holds the replay to a tenth of a core, but not the parse and the writing of a whole
  // snapshot, nor the collections of this thread's heap: those yield to the hub whenever both want the CPU.
  yieldCpuToOthers();
  const { hurry } = workerData as { hurry: Int32Array };
  parentPort?.on('message', (job: Job) => {
    const pacer = job.paced ? new Pacer(hurry) : undefined;
    work(job, pacer?.onStep).then(
      (result) => parentPort?.postMessage({ ok: true, ...result, pausedMs: pacer?.pausedMs ?? 0 }),
      (error: Error) => parentPort?.postMessage({ ok: false, message: error.message }),
    );
  });
}
