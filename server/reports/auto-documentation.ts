import type { Workflow } from '../../shared/schemas/workflow.ts';
import { isEnded } from '../domain/machinery/context.ts';
import { AGENTS_DOC, versionOf } from '../domain/machinery/state.ts';
import type { StateWriter } from '../state-writer.ts';
import type { WorkflowReads } from '../workflow-reads.ts';
import type { HubDirectory } from '../hub-directory.ts';
import type { Logger } from '../logger.ts';
import type { ReportRenderer } from './report-renderer.ts';
import { writeReports } from './writer.ts';

/**
 * Writes a workflow's reports to its output folder every `documentationInterval` seconds while it
 * runs, and once more when it ends, for workflows with `enableAutoDocumentation`. Unchanged
 * versions are not written again. It reacts to committed changes; it never changes state.
 */
export class AutoDocumentation {
  private readonly timers = new Map<string, ReturnType<typeof setInterval>>();
  private readonly written = new Map<string, number>();
  private readonly writing = new Map<string, Promise<void>>();

  constructor(
    private readonly hub: StateWriter,
    private readonly reads: WorkflowReads,
    private readonly log: Logger,
    private readonly hubDirectory: HubDirectory,
    private readonly renderer: ReportRenderer,
  ) {
    for (const workflow of hub.state.workflows.values()) this.track(workflow);
    hub.onCommit((batch) => {
      for (const record of batch.records) {
        for (const change of record.changes) {
          const workflow = change.doc === AGENTS_DOC ? undefined : hub.state.workflows.get(change.doc);
          if (workflow) this.track(workflow);
          // Archived: its final reports were written (or are being written) when it ended.
          else if (change.doc !== AGENTS_DOC) this.forget(change.doc);
        }
      }
    });
    // Memory went back to what is stored (or a replica loaded again): workflows it no longer holds
    // are forgotten as archived ones are, and the others' timers match their status again.
    hub.onRollback(({ left }) => {
      for (const workflowId of left) this.forget(workflowId);
      for (const workflow of hub.state.workflows.values()) this.track(workflow);
    });
  }

  /** Starts or stops the workflow's timer to match its status and config. */
  private track(workflow: Workflow): void {
    const enabled = workflow.config.enableAutoDocumentation;
    const timer = this.timers.get(workflow.id);
    if (enabled && workflow.status === 'in_progress' && !timer) {
      const every = workflow.config.documentationInterval * 1000;
      const interval = setInterval(() => void this.write(workflow.id), every);
      interval.unref();
      this.timers.set(workflow.id, interval);
    } else if ((!enabled || workflow.status !== 'in_progress') && timer) {
      clearInterval(timer);
      this.timers.delete(workflow.id);
    }
    if (enabled && isEnded(workflow) && this.written.get(workflow.id) !== versionOf(this.hub.state, workflow.id)) void this.write(workflow.id);
  }

  /** Writes all three formats if the workflow changed since the last write; one write at a time per workflow. */
  write(workflowId: string): Promise<void> {
    const previous = this.writing.get(workflowId) ?? Promise.resolve();
    const next = previous.then(async () => {
      // An ended workflow may have been archived since: its final reports are still due.
      const state = await this.reads.stateFor(workflowId);
      const workflow = state.workflows.get(workflowId);
      const version = versionOf(state, workflowId);
      if (!workflow || this.written.get(workflowId) === version) return;
      try {
        // The version rendered: a change may have landed while the renderers were first loading.
        const reports = await this.renderer.render(state, workflowId);
        await writeReports(workflow.outputFolder, reports, this.hubDirectory);
        if (this.hub.state.workflows.has(workflowId)) this.written.set(workflowId, reports[0]!.version);
      } catch (error) {
        this.log.warn({ err: error, workflowId, folder: workflow.outputFolder }, 'could not write reports');
      }
    });
    this.writing.set(workflowId, next);
    return next.finally(() => {
      if (this.writing.get(workflowId) === next) this.writing.delete(workflowId);
    });
  }

  /** Drops what is kept for a workflow leaving memory (after its final reports): its timer and the version last written. */
  forget(workflowId: string): void {
    clearInterval(this.timers.get(workflowId));
    this.timers.delete(workflowId);
    this.written.delete(workflowId);
  }

  /** Stops the timers and waits for writes in progress. */
  async close(): Promise<void> {
    for (const timer of this.timers.values()) clearInterval(timer);
    this.timers.clear();
    await Promise.all(this.writing.values());
  }
}
