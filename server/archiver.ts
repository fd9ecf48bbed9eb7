import { HubError } from '../shared/errors.ts';
import type { WorkflowStatus } from '../shared/schemas/workflow.ts';
import { isEnded } from './domain/machinery/context.ts';
import { FaultBackoff } from './domain/machinery/fault-backoff.ts';
import { summarize } from './domain/workflows/summary.ts';
import type { Logger } from './logger.ts';
import type { ReportRenderer } from './reports/report-renderer.ts';
import { pinnedLines } from './pinned-json.ts';
import type { StateWriter } from './state-writer.ts';
import { headerOf, type WorkflowArchive } from './store/archive.ts';
import { documentLine } from './store/archive-lines.ts';
import type { WorkflowReads } from './workflow-reads.ts';

export interface ArchiverOptions {
  /** How long an ended workflow stays in memory before it is archived. */
  keepFinishedMs: number;
  /** Archived workflows that ended longer ago than this are deleted; null keeps them. */
  retentionMs: number | null;
  /** How often to look for workflows to archive. */
  intervalMs: number;
}

/** An archived workflow deleted by retention or by hand. */
export interface Pruned {
  workflowId: string;
  status: WorkflowStatus;
  endedAt: number | null;
}

/** Workflows archived per pass at most, so that one pass never holds the writer's loop for long. */
const PER_PASS = 64;
/** Retention looks at every archived header: at most this often. */
const RETENTION_CHECK_MS = 60_000;

const SYSTEM = { role: 'system', name: 'archiver' } as const;

/**
 * Moves ended workflows out of memory: once one has been ended for `keepFinishedMs`, it is written
 * whole to the archive, and only then dropped from memory by a journaled `hub.evict` (a crash in
 * between leaves it in both, and it is archived again). Also applies retention to the archive.
 */
export class Archiver {
  private readonly timer: ReturnType<typeof setInterval>;
  private running: Promise<void> | undefined;
  private retentionCheckedAt = -Infinity;
  /** Counts the writer's rollbacks: an archive written across one may hold changes that were undone. */
  private rollbacks = 0;
  private closed = false;
  /** Workflows whose archiving failed, put off so that the others behind them are archived meanwhile. */
  private readonly faults = new FaultBackoff();
  private readonly deletedListeners: Array<(workflowIds: readonly string[]) => void> = [];
  /** Deletions under way (archive.prune's and retention's), which close waits for. */
  private readonly pruning = new Set<Promise<Pruned[]>>();

  constructor(
    private readonly hub: StateWriter,
    private readonly archive: WorkflowArchive,
    private readonly reads: WorkflowReads,
    private readonly options: ArchiverOptions,
    private readonly log: Logger,
    /** Told of workflows deleted from the archive, so that it lets go of their rendered reports. */
    private readonly renderer?: Pick<ReportRenderer, 'forget'>,
  ) {
    hub.onRollback(() => this.rollbacks++);
    this.timer = setInterval(() => void this.pass(), options.intervalMs);
    this.timer.unref();
  }

  /** Runs one pass now (or waits for the one running): archives what is due, then applies retention. */
  pass(): Promise<void> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Calls `listener` with the ids of archived workflows once they are deleted (their ids may then be given to new workflows). */
  onDeleted(listener: (workflowIds: readonly string[]) => void): void {
    this.deletedListeners.push(listener);
  }

  /** Deletes archived workflows that ended more than `olderThanMs` ago, and says which (UNAVAILABLE once closing). */
  prune(olderThanMs: number): Promise<Pruned[]> {
    if (this.closed) return Promise.reject(new HubError('UNAVAILABLE', 'the hub is shutting down'));
    const pruning = this.pruneNow(olderThanMs);
    this.pruning.add(pruning);
    const done = () => this.pruning.delete(pruning);
    pruning.then(done, done);
    return pruning;
  }

  private async pruneNow(olderThanMs: number): Promise<Pruned[]> {
    await this.archive.ready();
    const cutoff = this.hub.now() - olderThanMs;
    const gone = this.archive
      .headers()
      .filter((header) => (header.endedAt ?? header.archivedAt) <= cutoff && !this.hub.state.workflows.has(header.id))
      .map((header) => ({ workflowId: header.id, status: header.status, endedAt: header.endedAt }));
    if (gone.length === 0) return [];
    const ids = gone.map((item) => item.workflowId);
    // Told as the ids leave the archive's list, not once its clean-up (unlinking files) is done: a workflow
    // made anew under one meanwhile would otherwise resume, and patch, monitors' versions of the old one.
    await this.archive.remove(ids, () => this.forgetDeleted(ids));
    return gone;
  }

  /**
   * Archived workflows were deleted (here, or by a cluster's leader, which a follower learns from
   * the archive): their cached reads and reports go, and the listeners are told (their ids may be taken again).
   */
  forgetDeleted(workflowIds: readonly string[]): void {
    this.reads.forget(workflowIds);
    this.renderer?.forget(workflowIds);
    for (const listener of this.deletedListeners) listener(workflowIds);
  }

  /**
   * Stops the timer and waits for a pass and deletions in progress: the patch stream's epoch a
   * clean stop keeps must be the one after every deletion (a deleted id may be taken again).
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    await Promise.allSettled([...this.pruning]);
  }

  private async run(): Promise<void> {
    // In a cluster only the leader archives; followers see its evictions in the journal.
    if (this.hub.currentRole !== 'leader') return;
    try {
      const now = this.hub.now();
      const due: string[] = [];
      for (const workflow of this.hub.state.workflows.values()) {
        if (!isEnded(workflow) || (workflow.endedAt ?? workflow.updatedAt) + this.options.keepFinishedMs > now || !this.faults.mayRun(workflow.id, performance.now())) continue;
        if (due.push(workflow.id) === PER_PASS) break;
      }
      for (const workflowId of due) {
        if (this.closed) return;
        await this.archiveOneGuarded(workflowId, now);
      }
      const retention = this.options.retentionMs;
      if (retention !== null && now - this.retentionCheckedAt >= Math.min(RETENTION_CHECK_MS, retention)) {
        this.retentionCheckedAt = now;
        const pruned = await this.prune(retention);
        if (pruned.length > 0) this.log.info({ deleted: pruned.length, retentionMs: retention }, 'archived workflows past retention deleted');
      }
    } catch (error) {
      // Unavailable while leading on: the archive refuses writes (its index unreadable, a lease lost that this node has yet to notice).
      if (!(error instanceof HubError && error.code === 'UNAVAILABLE')) this.log.error({ err: error }, 'archiving failed');
      else if (!this.closed && this.hub.currentRole === 'leader') this.log.warn({ reason: error.message }, 'archiving paused: the store refuses writes');
    }
  }

  /**
   * archiveOne, with a failure of this workflow's own (a file it cannot write, a document that
   * cannot be serialised) logged and the workflow put off, so that the workflows after it go on
   * leaving memory; the hub stopping or leading no more ends the pass.
   */
  private async archiveOneGuarded(workflowId: string, now: number): Promise<void> {
    try {
      await this.archiveOne(workflowId, now);
      this.faults.cleared(workflowId);
    } catch (error) {
      // The hub stopping, leading no more (or fenced out before it knows), or its archive refusing every write: the pass ends, no workflow's fault.
      if (this.closed || this.hub.currentRole !== 'leader' || (error instanceof HubError && error.code === 'UNAVAILABLE')) throw error;
      const { count, retryInMs } = this.faults.failed(workflowId, performance.now());
      this.log.error({ err: error, workflowId, failures: count, retryInMs }, 'archiving a workflow failed: it stays in memory and is tried again later');
    }
  }

  private async archiveOne(workflowId: string, now: number): Promise<void> {
    const workflow = this.hub.state.workflows.get(workflowId);
    if (!workflow || !isEnded(workflow)) return;
    // Pinned now, at this version: the document is serialised a slice at a time as the archive writes it.
    const document = pinnedLines(this.hub.state, workflowId, documentLine);
    const version = document.version;
    const rollbacks = this.rollbacks;
    try {
      // An ended workflow's summary no longer depends on the time: kept with it, it is read without the workflow.
      await this.archive.put({ header: headerOf(workflow, version, now), lines: document.chunks }, summarize(workflow, version, now));
    } finally {
      document.release();
    }
    // The archived copy may hold a change that was not yet written and has since been undone; the
    // next pass writes it again. Otherwise the eviction commits only if every change before it did.
    if (this.rollbacks !== rollbacks) return;
    const { evicted } = await this.hub.dispatch({ type: 'hub.evict', input: { workflowId, version }, actor: SYSTEM });
    this.log.debug({ workflowId, version, evicted }, 'workflow archived');
  }
}
