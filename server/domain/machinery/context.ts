import { HubError } from '../../../shared/errors.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { HubState } from './state.ts';
import type { Effect } from './effects.ts';
import type { Transaction } from './transaction.ts';

/** Settings the domain needs from the hub's options. */
export interface DomainSettings {
  /** Folder under which a workflow's default outputFolder is created. */
  outputRoot: string;
  /** How many recent values each KPI keeps in `history`. */
  kpiHistoryLimit: number;
  /** How many previous versions each data reference keeps in `history`. */
  dataHistoryLimit: number;
  /** Waiting this long lifts an order by one priority level. */
  agingMs: number;
  /** How long a disconnected agent keeps its running work before it is reassigned. */
  graceMs: number;
  /** How long an offline agent stays in the pool before it is forgotten. */
  forgetAgentsAfterMs: number;
  /** Retry backoff: base × 2^(attempt − 1), at most max. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How long an order every capable agent declined waits before its declines are forgotten; 0 or null: never. */
  declinedRetryMs: number | null;
}

/** What a command gets from the hub besides the state: the time, an id source and settings. No I/O. */
export interface Environment {
  /** The wall clock (ms since the epoch): timestamps, and deadlines kept in documents, which a restart must find. */
  now: number;
  /**
   * The monotonic clock (ms, comparable only within this run) the sweep's timers run on (leases,
   * offer deadlines, grace periods, backoffs, overall timeouts), which a step of the wall clock
   * must neither end nor stretch.
   */
  monotonicNow: number;
  newId(prefix: string): string;
  settings: DomainSettings;
}

/**
 * The context a command runs in: the state it reads, the transaction every write goes through,
 * and its environment. Every domain function that changes state takes one.
 */
export interface CommandContext {
  state: HubState;
  tx: Transaction<Effect>;
  ctx: Environment;
}

/** The workflow with this id in memory; INVALID_TRANSITION when it is archived (it ended), else NOT_FOUND. */
export function requireWorkflow(state: HubState, workflowId: string): Workflow {
  const workflow = state.workflows.get(workflowId);
  if (!workflow) {
    if (state.archived.has(workflowId)) throw new HubError('INVALID_TRANSITION', `workflow ${workflowId} has ended and is archived; it can no longer change`);
    throw new HubError('NOT_FOUND', `workflow ${workflowId} does not exist`);
  }
  return workflow;
}

/** The entity `id` of a workflow's collection, or NOT_FOUND naming its kind. */
export function requireEntity<T>(collection: Record<string, T>, id: string, kind: string, workflowId: string): T {
  const entity = Object.hasOwn(collection, id) ? collection[id] : undefined;
  if (entity === undefined) throw new HubError('NOT_FOUND', `${kind} ${id} does not exist in workflow ${workflowId}`);
  return entity;
}

/** Refuses with CONFLICT when `id` is already taken in `collection`. */
export function requireFreeId(collection: Record<string, unknown>, id: string, kind: string): void {
  if (Object.hasOwn(collection, id)) throw new HubError('CONFLICT', `${kind} ${id} already exists`);
}

/** The final statuses of a workflow. */
export const ENDED_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

/** True once a workflow has reached a final status. */
export function isEnded(workflow: Workflow): boolean {
  return ENDED_STATUSES.has(workflow.status);
}

/** Refuses changes to a workflow that has ended. */
export function requireOpen(workflow: Workflow, what: string): void {
  if (isEnded(workflow)) throw new HubError('INVALID_TRANSITION', `cannot ${what}: workflow ${workflow.id} is ${workflow.status}`);
}
