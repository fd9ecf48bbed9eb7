import { HubError } from '../../shared/errors.ts';
import { HubFault } from '../hub-fault.ts';
import type { WorkflowSummary } from '../../shared/schemas/summary.ts';
import { CreationOrder } from '../../shared/creation-order.ts';
import { workflowHeader, type Workflow, type WorkflowHeader } from '../../shared/schemas/workflow.ts';
import { Id } from '../../shared/schemas/common.ts';

/** What the hub keeps in memory of an archived workflow: its list header, its final version and when it was archived. */
export interface ArchivedHeader extends WorkflowHeader {
  v: number;
  archivedAt: number;
}

/** A finished workflow as the archive holds it: the whole document at its final version. */
export interface ArchivedWorkflow {
  v: number;
  archivedAt: number;
  workflow: Workflow;
}

/**
 * A finished workflow on its way to the archive: its header (with its version and when it was
 * archived), and its document as the lines of archive-lines.ts, produced over many turns of the
 * event loop (see pinnedLines) while the archive writes them.
 */
export interface WorkflowToArchive {
  header: ArchivedHeader;
  lines: AsyncIterable<Buffer>;
}

/**
 * Where finished workflows go when they leave memory. The headers are held in memory (a few
 * hundred bytes each) so that lists and lookups need no disk; a workflow's document is read only
 * when it is asked for.
 */
export interface WorkflowArchive {
  /** Resolves once the archive is loaded; `header`, `headers` and `size` are complete from then on. */
  ready(): Promise<void>;
  /** Whether the workflow is archived (exact at any time). */
  has(workflowId: string): boolean;
  /** The archived workflow's header, or undefined. */
  header(workflowId: string): ArchivedHeader | undefined;
  /** Every archived workflow's header, oldest creation first (ties by id: the order of workflow.list). */
  headers(): readonly ArchivedHeader[];
  /** How many workflows are archived. */
  readonly size: number;
  /** Archived workflows by status and their orders by state (complete once `ready`). */
  readonly tally: ArchiveTally;
  /**
   * Writes a finished workflow durably with its summary (serialised before this returns), reading
   * its lines as they come; resolves once it is on disk and listed. The summary is kept apart so
   * that reading it costs no parse of the workflow (an ended workflow's summary no longer changes).
   */
  put(entry: WorkflowToArchive, summary: WorkflowSummary): Promise<void>;
  /** Reads an archived workflow back, checking it is what was written; undefined when it is not archived. */
  read(workflowId: string): Promise<ArchivedWorkflow | undefined>;
  /** Reads an archived workflow's summary alone; undefined when it is not archived, or was archived without one (the first archiving hubs). */
  readSummary(workflowId: string): Promise<WorkflowSummary | undefined>;
  /**
   * Deletes archived workflows; resolves once the archive no longer lists them and has cleaned up.
   * `unlisted` is called in the turn they leave the list (their ids may be taken again from then
   * on), before any clean-up: whoever must know (monitors holding their versions) hears of it first.
   */
  remove(workflowIds: readonly string[], unlisted?: () => void): Promise<void>;
}

/** What the archive keeps in memory of a workflow archived at version `v`. */
export function headerOf(workflow: Workflow, v: number, archivedAt: number): ArchivedHeader {
  return { ...workflowHeader(workflow), v, archivedAt };
}

/**
 * `value` as an archived header, or undefined when it is not one: the fields that lists, lookups
 * and paging rely on, and an id that is one (it names a file, or a row). Shared by every archive.
 */
export function archivedHeader(value: unknown): ArchivedHeader | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const header = value as Partial<Record<keyof ArchivedHeader, unknown>>;
  const numbers = [header.v, header.archivedAt, header.createdAt].every((field) => typeof field === 'number' && Number.isFinite(field));
  const counts = typeof header.workOrderCounts === 'object' && header.workOrderCounts !== null;
  return numbers && counts && typeof header.status === 'string' && Id.safeParse(header.id).success ? (value as ArchivedHeader) : undefined;
}

/** What went wrong with an archived workflow where it is kept (`where`: a file, a table), as the error a read answers with. */
export function damaged(id: string, where: string, why: string): HubError {
  return new HubFault(`archived workflow ${id} is damaged (${why}); the hub's log names where it is kept`, `archived workflow ${id} in ${where} is damaged (${why})`);
}

/** An archived workflow that could not be read from where it is kept, as the error a read answers with. */
export function unreadable(id: string, where: string, error: Error): HubError {
  return new HubFault(`archived workflow ${id} cannot be read; the hub's log says why`, `archived workflow ${id} cannot be read from ${where}: ${error.message}`);
}

/** Archived headers in the order of workflow.list, with a lookup by id. Shared by every archive implementation. */
export class HeaderIndex extends CreationOrder<ArchivedHeader> {
  /** Workflows by status and their orders by state over every header, kept as headers come and go: /metrics reads them without a pass over the archive. */
  readonly tally: ArchiveTally = { workflows: new Map(), orders: new Map() };

  override put(header: ArchivedHeader): void {
    super.put(header);
    this.count(header, 1);
  }

  override remove(id: string): void {
    const header = this.get(id);
    super.remove(id);
    if (header) this.count(header, -1);
  }

  override delete(ids: readonly string[]): void {
    for (const id of new Set(ids)) {
      const header = this.get(id);
      if (header) this.count(header, -1);
    }
    super.delete(ids);
  }

  private count(header: ArchivedHeader, sign: 1 | -1): void {
    add(this.tally.workflows, header.status, sign);
    // A damaged index line may hold anything there: only whole counts are added.
    for (const [state, n] of Object.entries(header.workOrderCounts)) if (Number.isSafeInteger(n)) add(this.tally.orders, state, sign * n);
  }
}

/** Archived workflows by status, and their work orders by state. */
export interface ArchiveTally {
  workflows: Map<string, number>;
  orders: Map<string, number>;
}

function add(counts: Map<string, number>, key: string, n: number): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}
