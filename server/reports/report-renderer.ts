import type { Worker } from 'node:worker_threads';
import { HubError } from '../../shared/errors.ts';
import type { Agent } from '../../shared/schemas/agent.ts';
import { ReportFormat, type Report } from '../../shared/schemas/report.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import { workflowSmallerThan, versionOf, type HubState } from '../domain/machinery/state.ts';
import { pinnedJson, type PinnedJson } from '../pinned-json.ts';
import { partsOf } from '../transport/transfers.ts';
import { startWorker, workerEntry } from '../worker-threads.ts';
import type { RenderJob, RenderResult } from './report-worker.ts';

/** A rendered report whose body is held as UTF-8 parts of at most PART_BYTES. */
export interface RenderedReport extends Omit<Report, 'body'> {
  parts: Buffer[];
  bytes: number;
}

/** Up to about this much JSON, a workflow's reports are rendered on the event loop (a few ms). */
const INLINE_RENDER_BYTES = 256 * 1024;
/** A worker idle this long is stopped, giving back the heap a big report took. */
const IDLE_MS = 10_000;
/**
 * The latest big reports of a few workflows are kept, up to about this many bytes (the newest
 * always): the same version renders the same bytes, and a JSON report of 100,000 orders is 124 MB.
 */
const KEPT_BYTES = 256 * 1024 * 1024;

const workerUrl = workerEntry('report-worker', import.meta.url);

/** The renderers (and marked with them), loaded at the first report: a hub starts without them. */
let loading: Promise<typeof import('./report.ts')> | undefined;
let renderers: typeof import('./report.ts') | undefined;

/** The agent pool's entries for the agents a workflow names: reports read no others. */
function agentsOf(workflow: Workflow, pool: Record<string, Agent> | undefined): Record<string, Agent> {
  const agents: Record<string, Agent> = {};
  if (!pool) return agents;
  for (const agentId in workflow.agents) if (Object.hasOwn(pool, agentId)) agents[agentId] = pool[agentId]!;
  return agents;
}

interface Pending {
  resolve: (reports: RenderedReport[]) => void;
  reject: (error: Error) => void;
  /** The worker the job was sent to: only its stop fails the job. */
  worker: Worker;
}

/**
 * Renders reports without holding the hub's event loop: a small workflow on the loop, a big one
 * in a worker thread, fed its JSON as PinnedDoc serialises it a slice at a time from the version
 * of the request. One big render at a time; the latest reports of the last few workflows are
 * kept, so readers asking again at the same version get the same bytes without a render.
 */
export class ReportRenderer {
  private worker: Worker | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextJob = 0;
  private readonly pending = new Map<number, Pending>();
  /** Big renders queued or running. */
  private running = 0;
  /** A big render waiting for its turn, per workflow (and author): requests join it until it starts. */
  private readonly waiting = new Map<string, { formats: Set<ReportFormat>; result: Promise<ReadonlyMap<ReportFormat, RenderedReport>> }>();
  /** The latest big reports of the last few workflows, by format, and the version they describe. */
  private readonly kept = new Map<string, { version: number; reports: Map<ReportFormat, RenderedReport> }>();
  /** Bumped by forgetAll(): a render asked for before it may describe a version that now names other contents. */
  private generation = 0;
  private closed = false;

  /**
   * The reports of `workflowId` in `formats`, of the version it is at when called, or later: a big
   * workflow is rendered in the worker at once when it is free (so changes that come after the
   * request are not in the reports), else by the next render of that workflow, which starts once
   * the worker is free and answers everyone who asked meanwhile.
   */
  render(state: HubState, workflowId: string, formats: readonly ReportFormat[] = ReportFormat.options, generatedBy?: string): Promise<RenderedReport[]> {
    const workflow = requireWorkflow(state, workflowId);
    if (workflowSmallerThan(workflow, INLINE_RENDER_BYTES)) {
      if (renderers) return Promise.resolve(renderHere(renderers, state, workflowId, formats, generatedBy));
      return (loading ??= import('./report.ts')).then((loaded) => renderHere((renderers = loaded), state, workflowId, formats, generatedBy));
    }
    // createdAt too: a workflow deleted from the archive may be created again under its id, and reach the same version.
    const key = `${workflowId}\u0000${workflow.createdAt}\u0000${generatedBy ?? ''}`;
    const pick = (reports: ReadonlyMap<ReportFormat, RenderedReport>) => formats.map((format) => reports.get(format)!);
    // The same version renders the same bytes.
    const kept = this.kept.get(key);
    if (kept?.version === versionOf(state, workflowId) && formats.every((format) => kept.reports.has(format))) return Promise.resolve(pick(kept.reports));
    if (this.running === 0) {
      // Pinned now, at the version of the request.
      const agents = agentsOf(workflow, state.agents);
      const pinned = pinnedJson(state, workflowId);
      return this.enqueue(key, () => this.renderInWorker(pinned, agents, formats, generatedBy)).then(pick);
    }
    let wait = this.waiting.get(key);
    if (!wait) {
      const formatsWanted = new Set<ReportFormat>();
      const result = this.enqueue(key, () => {
        this.waiting.delete(key);
        const current = requireWorkflow(state, workflowId);
        return this.renderInWorker(pinnedJson(state, workflowId), agentsOf(current, state.agents), [...formatsWanted], generatedBy);
      });
      wait = { formats: formatsWanted, result };
      this.waiting.set(key, wait);
    }
    for (const format of formats) wait.formats.add(format);
    return wait.result.then(pick);
  }

  /** Runs big renders one after another (each holds a pin and the worker's heap while it runs), keeping the latest of each workflow. */
  private enqueue(key: string, run: () => Promise<RenderedReport[]>): Promise<ReadonlyMap<ReportFormat, RenderedReport>> {
    this.running++;
    const generation = this.generation;
    const rendered = this.queue.then(run, run).finally(() => this.running--);
    this.queue = rendered.catch(() => undefined);
    return rendered.then((reports) => {
      const byFormat = new Map(reports.map((report) => [report.format, report]));
      // Its readers still get it (as any read of changes not yet stored), but its version may now be another change's.
      if (generation !== this.generation) return byFormat;
      this.kept.delete(key);
      this.kept.set(key, { version: reports[0]!.version, reports: byFormat });
      let bytes = 0;
      for (const kept of this.kept.values()) for (const report of kept.reports.values()) bytes += report.bytes;
      // Oldest first, never the one just kept.
      for (const [oldest, kept] of this.kept) {
        if (bytes <= KEPT_BYTES || oldest === key) break;
        for (const report of kept.reports.values()) bytes -= report.bytes;
        this.kept.delete(oldest);
      }
      return byFormat;
    });
  }

  /** Drops the reports kept of workflows deleted from the archive (by retention or prune): nobody can ask for them again. */
  forget(workflowIds: readonly string[]): void {
    const gone = new Set(workflowIds);
    for (const key of [...this.kept.keys()]) if (gone.has(key.slice(0, key.indexOf('\u0000')))) this.kept.delete(key);
  }

  /**
   * Drops every kept report, and keeps none of the renders under way: after a rollback, or a
   * follower's reload of its replica, a version rendered before may be given to other contents.
   */
  forgetAll(): void {
    this.generation++;
    this.kept.clear();
  }

  /** Stops the worker; renders waiting for it are refused (UNAVAILABLE), and none starts one again. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idle);
    this.kept.clear();
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private async renderInWorker(
    { version, chunks, release }: PinnedJson,
    agents: Record<string, Agent>,
    formats: readonly ReportFormat[],
    generatedBy: string | undefined,
  ): Promise<RenderedReport[]> {
    if (this.closed) {
      release();
      throw new HubError('UNAVAILABLE', 'the hub is shutting down');
    }
    const worker = this.startedWorker();
    const job = this.nextJob++;
    const done = new Promise<RenderedReport[]>((resolve, reject) => this.pending.set(job, { resolve, reject, worker }));
    // The worker may stop (the hub closing, a crash) while the chunks are still being sent, before
    // anyone awaits `done`: its rejection is handled here, and thrown below.
    done.catch(() => undefined);
    try {
      for await (const chunk of chunks) {
        // A chunk with an ArrayBuffer of its own moves to the worker; a small pooled one is copied.
        const own = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
        worker.postMessage({ job, chunk } satisfies RenderJob, own ? [chunk.buffer as ArrayBuffer] : []);
      }
      worker.postMessage({ job, render: { version, agents, formats: [...formats], ...(generatedBy === undefined ? {} : { generatedBy }) } } satisfies RenderJob);
    } catch (error) {
      this.pending.delete(job);
      throw error;
    } finally {
      release();
    }
    try {
      return await done;
    } finally {
      if (this.pending.size === 0) this.idle = setTimeout(() => void this.stopIdle(), IDLE_MS).unref();
    }
  }

  private startedWorker(): Worker {
    clearTimeout(this.idle);
    if (this.worker) return this.worker;
    const worker = startWorker(workerUrl);
    // Requests waiting on a render keep the process alive, not the thread.
    worker.unref();
    worker.on('message', (result: RenderResult) => {
      const pending = this.pending.get(result.job);
      if (!pending) return;
      this.pending.delete(result.job);
      if (!result.ok) return pending.reject(new HubError('INTERNAL', `the report could not be rendered: ${result.message}`));
      pending.resolve(
        result.reports.map(({ body, byteOffset, bytes, ...meta }) => ({ ...meta, parts: partsOf(Buffer.from(body, byteOffset, bytes)), bytes })),
      );
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      const reason = this.closed ? new HubError('UNAVAILABLE', 'the hub is shutting down') : new HubError('INTERNAL', `the report worker stopped: ${error.message}`);
      // Only its own jobs: one stopped as idle reports its exit after a new worker may have taken jobs.
      for (const [job, pending] of this.pending) {
        if (pending.worker !== worker) continue;
        this.pending.delete(job);
        pending.reject(reason);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private async stopIdle(): Promise<void> {
    if (this.pending.size > 0 || !this.worker) return;
    const worker = this.worker;
    this.worker = undefined;
    await worker.terminate();
  }
}

/** Renders on the event loop: for workflows small enough that it takes a few milliseconds. */
function renderHere(
  { renderReports }: typeof import('./report.ts'),
  state: HubState,
  workflowId: string,
  formats: readonly ReportFormat[],
  generatedBy: string | undefined,
): RenderedReport[] {
  const workflow = requireWorkflow(state, workflowId);
  const input = { workflow, version: versionOf(state, workflowId), agents: agentsOf(workflow, state.agents), ...(generatedBy === undefined ? {} : { generatedBy }) };
  return renderReports(input, formats).map(({ body, ...meta }) => {
    const bytes = Buffer.from(body, 'utf8');
    return { ...meta, parts: partsOf(bytes), bytes: bytes.length };
  });
}
