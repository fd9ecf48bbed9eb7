import { Histogram, type HistogramData, type LatencySummary } from '../histogram.ts';
import { epochMs, runOpenLoop } from '../open-loop.ts';
import { processTreeCpuMs } from '../process-tree-cpu.ts';

/*
 * The peer scenario's three workloads (test/bench/peer.ts), written once against PeerSide so that
 * the hub (roles/peer-hub.ts) and BullMQ (roles/peer-bullmq.ts) run exactly the same steps.
 * The server's CPU is read from /proc on both sides (the hub's process, redis-server's), by the
 * generator, at the moments a workload starts and ends.
 */

/** What a job carries: its number and, in the open loop, when it was due (epoch ms). */
export interface Job {
  i: number;
  t?: number;
}

/** Reports progress as the side does it: `ctx.progress()` on the hub, `job.updateProgress()` in BullMQ; resolves once acknowledged. */
export type Progress = (percentage: number, message?: string) => Promise<void>;

/** A job's handler: what it does between being handed the job and returning. */
export type Handler = (job: Job, progress: Progress) => Promise<void>;

/** Workers connected and ready that take nothing until `run()`. */
export interface Workers {
  /** Lets them take jobs; resolves once they have asked for work. */
  run(): Promise<void>;
  /** Reports the side refused or jobs that failed, as text; a workload stops at the first. */
  readonly failures: string[];
  close(): Promise<void>;
}

/** One queue of jobs: a BullMQ queue, or a started workflow of the hub. */
export interface PeerQueue {
  /** Creates jobs at once (up to 1000; the hub's createMany takes no more). */
  addBulk(jobs: Job[]): Promise<void>;
  /** Creates one job; resolves once the server acknowledged it. */
  add(job: Job): Promise<void>;
  /**
   * `count` workers of `concurrency` slots running `handler`; `completed` is called when a job's
   * completion was acknowledged to its worker (hub: the agent's `report`; BullMQ: the Worker's `completed`).
   */
  workers(count: number, concurrency: number, handler: Handler, completed: (job: Job) => void): Promise<Workers>;
  close(): Promise<void>;
}

/** A server and its clients: the hub with the SDK, or redis-server with BullMQ. */
export interface PeerSide {
  /** A new, empty queue; `kind` names it (unique in a run). */
  open(kind: string): Promise<PeerQueue>;
  close(): Promise<void>;
}

/** The handler of the lifecycle workloads: awaits progress twice and returns. */
const twoUpdates: Handler = async (_job, progress) => {
  await progress(50);
  await progress(100);
};

/** Resolves once `done()` holds, polling; rejects with what `state()` says at `deadline` (Date.now()) or at a worker's failure. */
async function waitFor(done: () => boolean, workers: Workers, deadline: number, state: () => string): Promise<void> {
  while (!done()) {
    if (workers.failures.length) throw new Error(`${state()}, then a failure: ${workers.failures.slice(0, 3).join('; ')}`);
    if (Date.now() > deadline) throw new Error(`timed out: ${state()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** CPU time (ms) of the server process and of this generator since the call, read when asked. */
function cpuSince(serverPid: number): () => { serverMs: number; generatorMs: number } {
  const server = processTreeCpuMs(serverPid) ?? NaN;
  const generator = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(generator);
    return { serverMs: (processTreeCpuMs(serverPid) ?? NaN) - server, generatorMs: (used.user + used.system) / 1000 };
  };
}

export interface BulkOptions {
  kind: string;
  jobs: number;
  /** Jobs per bulk creation. */
  chunk: number;
  workers: number;
  concurrency: number;
  serverPid: number;
  /** Bound on the whole workload, creation included. */
  boundMs: number;
}

export interface BulkFigures {
  jobs: number;
  createMs: number;
  /** From the workers' start to the last completion acknowledged. */
  elapsedMs: number;
  perSecond: number;
  serverCpuMs: number;
  serverCpuPerJobMs: number;
  generatorCpuMs: number;
}

/** Runs `body` on a new queue of `side`; the workers it starts (handed to `keep`) and the queue are closed after, whatever happens. */
async function onQueue<T>(side: PeerSide, kind: string, body: (queue: PeerQueue, keep: (workers: Workers) => Workers) => Promise<T>): Promise<T> {
  const queue = await side.open(kind);
  let workers: Workers | undefined;
  try {
    return await body(queue, (started) => (workers = started));
  } finally {
    await workers?.close();
    await queue.close();
  }
}

/** Workload 1: `jobs` created in bulk; then the workers start and run them all; jobs/s to the last completion. */
export async function bulkLifecycle(side: PeerSide, options: BulkOptions): Promise<BulkFigures> {
  const deadline = Date.now() + options.boundMs;
  return onQueue(side, options.kind, async (queue, keep) => {
    const createStart = epochMs();
    for (let from = 0; from < options.jobs; from += options.chunk) {
      await queue.addBulk(Array.from({ length: Math.min(options.chunk, options.jobs - from) }, (_, k) => ({ i: from + k })));
      if (Date.now() > deadline) throw new Error(`timed out after ${options.boundMs} ms creating ${options.jobs} jobs (${from + options.chunk} created)`);
    }
    const createMs = epochMs() - createStart;
    let completed = 0;
    // Set just before the workers start: none completes before run().
    let since: ReturnType<typeof cpuSince> | undefined;
    let end = { at: NaN, cpu: { serverMs: NaN, generatorMs: NaN } };
    const workers = keep(await queue.workers(options.workers, options.concurrency, twoUpdates, () => {
      if (++completed === options.jobs) end = { at: epochMs(), cpu: since!() };
    }));
    since = cpuSince(options.serverPid);
    const start = epochMs();
    await workers.run();
    await waitFor(() => completed >= options.jobs, workers, deadline, () => `${completed} of ${options.jobs} bulk-created jobs completed within ${options.boundMs} ms (the bound of the whole workload)`);
    const elapsedMs = end.at - start;
    return {
      jobs: options.jobs,
      createMs,
      elapsedMs,
      perSecond: (options.jobs * 1000) / elapsedMs,
      serverCpuMs: end.cpu.serverMs,
      serverCpuPerJobMs: end.cpu.serverMs / options.jobs,
      generatorCpuMs: end.cpu.generatorMs,
    };
  });
}

export interface OpenOptions {
  kind: string;
  rate: number;
  durationMs: number;
  /** Sent at the same rate before, not counted. */
  warmupMs: number;
  workers: number;
  concurrency: number;
  serverPid: number;
  /** How long the last completions may take after the schedule ends. */
  boundMs: number;
}

export interface OpenFigures {
  scheduled: number;
  created: number;
  createErrors: Record<string, number>;
  completed: number;
  /** From each job's due time to its completion acknowledged to the worker (warm-up left out). */
  completionAck: HistogramData;
  /** From each job's due time to its creation acknowledged. */
  createAck: HistogramData;
  sendLag: LatencySummary;
  /** Over the measured period (100 = one core). */
  serverCpuPercent: number;
  generatorCpuPercent: number;
}

/** Workload 2: jobs created one at a time at `rate`, the workers already running; completion acked, from each job's due time. */
export async function openLoop(side: PeerSide, options: OpenOptions): Promise<OpenFigures> {
  return onQueue(side, options.kind, async (queue, keep) => {
    const warm = Math.round((options.rate * options.warmupMs) / 1000);
    const completionAck = new Histogram();
    let completed = 0;
    const workers = keep(await queue.workers(options.workers, options.concurrency, twoUpdates, (job) => {
      completed++;
      if (job.i >= warm && job.t !== undefined) completionAck.recordMs(epochMs() - job.t);
    }));
    await workers.run();
    const start = epochMs() + 50;
    // The server's CPU over the measured period: from the end of the warm-up to the end of the schedule.
    const measuredCpu = new Promise<ReturnType<ReturnType<typeof cpuSince>>>((resolve) =>
      setTimeout(() => {
        const cpu = cpuSince(options.serverPid);
        setTimeout(() => resolve(cpu()), start + options.warmupMs + options.durationMs - epochMs());
      }, start + options.warmupMs - epochMs()),
    );
    let created = 0;
    const open = await runOpenLoop({
      startEpochMs: start,
      rate: options.rate,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      send: (i, intended, done) =>
        queue.add({ i, t: intended }).then(
          () => (created++, done()),
          (error: { code?: string }) => done(error.code ?? 'ERROR'),
        ),
    });
    // The schedule's last job may be answered before the measured period ends, by up to one interval.
    const used = await measuredCpu;
    await waitFor(() => completed >= created, workers, Date.now() + options.boundMs, () => `${completed} of ${created} jobs created at ${options.rate}/s completed within ${options.boundMs} ms of the schedule's end`);
    return {
      scheduled: open.scheduled,
      created,
      createErrors: open.errors,
      completed,
      completionAck: completionAck.toJSON(),
      createAck: open.latency.toJSON(),
      sendLag: open.sendLag.summary(),
      serverCpuPercent: used.serverMs / (options.durationMs / 100),
      generatorCpuPercent: used.generatorMs / (options.durationMs / 100),
    };
  });
}

export interface AwaitedOptions {
  kind: string;
  updates: number;
  /** The updates stop here if not all were sent: the rate is over those that were. */
  capMs: number;
  serverPid: number;
}

export interface AwaitedFigures {
  updates: number;
  /** Whether capMs stopped the updates before `updates`. */
  capped: boolean;
  elapsedMs: number;
  perSecond: number;
  serverCpuMs: number;
  serverCpuPerUpdateUs: number;
  generatorCpuMs: number;
}

/** Workload 3: one job whose handler awaits `updates` progress updates in turn. */
export async function awaitedProgress(side: PeerSide, options: AwaitedOptions): Promise<AwaitedFigures> {
  return onQueue(side, options.kind, async (queue, keep) => {
    let figures: AwaitedFigures | undefined;
    const handler: Handler = async (_job, progress) => {
      const cpu = cpuSince(options.serverPid);
      const start = epochMs();
      let sent = 0;
      while (sent < options.updates && epochMs() - start < options.capMs) {
        await progress(Math.floor((sent * 100) / options.updates), String(sent));
        sent++;
      }
      const elapsedMs = epochMs() - start;
      const used = cpu();
      figures = { updates: sent, capped: sent < options.updates, elapsedMs, perSecond: (sent * 1000) / elapsedMs, serverCpuMs: used.serverMs, serverCpuPerUpdateUs: (used.serverMs * 1000) / sent, generatorCpuMs: used.generatorMs };
    };
    let completed = false;
    const workers = keep(await queue.workers(1, 1, handler, () => (completed = true)));
    await workers.run();
    await queue.add({ i: 0 });
    const boundMs = options.capMs + 30_000;
    await waitFor(() => completed, workers, Date.now() + boundMs, () => `the job awaiting progress did not complete within ${boundMs} ms`);
    return figures!;
  });
}
