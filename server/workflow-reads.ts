import type { WorkflowSummary } from '../shared/schemas/summary.ts';
import { workflowSummary } from './domain/machinery/queries.ts';
import { emptyState, putDoc, type HubState } from './domain/machinery/state.ts';
import { countOrders } from './domain/work/order-lists.ts';
import type { StateWriter } from './state-writer.ts';
import type { ArchivedHeader, WorkflowArchive } from './store/archive.ts';

/** Archived workflows kept parsed after a read, at most this many, and about this many work orders in all. */
const CACHED_WORKFLOWS = 16;
const CACHED_ORDERS = 20_000;

/**
 * Where a read of one workflow looks: the hub's state while the workflow is in memory, else the
 * archive. Every read query takes a state, so an archived workflow is answered by the same
 * functions, given a state that holds it alone at its final version. The last few read are kept.
 */
export class WorkflowReads {
  private readonly cache = new Map<string, { state: HubState; orders: number; header: ArchivedHeader }>();
  private cachedOrders = 0;
  private readonly loading = new Map<string, Promise<HubState>>();

  constructor(
    private readonly hub: StateWriter,
    readonly archive: WorkflowArchive,
    private readonly agingMs: number,
  ) {}

  /**
   * The state that holds `workflowId`: the hub's own when the workflow is in memory (or unknown:
   * queries then answer NOT_FOUND), else a state of the archived workflow alone.
   */
  stateFor(workflowId: string): HubState | Promise<HubState> {
    if (this.hub.state.workflows.has(workflowId) || !this.archive.has(workflowId)) return this.hub.state;
    const cached = this.cached(workflowId);
    if (cached) {
      // Most recently used last.
      this.cache.delete(workflowId);
      this.cache.set(workflowId, cached);
      return cached.state;
    }
    let loading = this.loading.get(workflowId);
    if (!loading) {
      loading = this.load(workflowId).finally(() => this.loading.delete(workflowId));
      this.loading.set(workflowId, loading);
    }
    return loading;
  }

  /**
   * Runs `read` on the state that holds `workflowId`: at once (in this turn, before any other
   * request) when it is in memory, so the read sees the version of the moment it was asked.
   */
  read<T>(workflowId: string, read: (state: HubState) => T | Promise<T>): Promise<T> {
    const state = this.stateFor(workflowId);
    try {
      return state instanceof Promise ? state.then(read) : Promise.resolve(read(state));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A workflow's summary at the time `now`: computed from memory, or for an archived workflow the
   * summary archived with it (an ended workflow's no longer changes), so the workflow is not read.
   */
  async summary(workflowId: string, now: number): Promise<WorkflowSummary> {
    // Memory first: a workflow whose eviction was rolled back is in both, and may have changed since.
    if (this.hub.state.workflows.has(workflowId)) return workflowSummary(this.hub.state, workflowId, now);
    // A copy of a workflow no longer archived (a follower learns of deletions by a refresh, which leaves the cache) answers nothing.
    const cached = this.archive.has(workflowId) ? this.cached(workflowId)?.state : undefined;
    if (!cached) {
      const archived = await this.archive.readSummary(workflowId);
      // Archived before `paused` was kept: not paused (an ended workflow is not).
      if (archived) return archived.paused === undefined ? { ...archived, paused: null } : archived;
      // Archived without a summary (by the first archiving hubs): computed from the workflow.
      if (this.archive.has(workflowId)) return workflowSummary(await this.stateFor(workflowId), workflowId, now);
    }
    return workflowSummary(cached ?? this.hub.state, workflowId, now);
  }

  /** Forgets cached copies of workflows no longer archived (deleted by retention or prune). */
  forget(workflowIds: readonly string[]): void {
    for (const id of workflowIds) this.drop(id);
  }

  private async load(workflowId: string): Promise<HubState> {
    await this.archive.ready();
    const header = this.archive.header(workflowId);
    const archived = await this.archive.read(workflowId);
    // Deleted meanwhile: the hub's state answers NOT_FOUND.
    if (!archived) return this.hub.state;
    const state = emptyState(this.agingMs);
    putDoc(state, workflowId, archived.workflow);
    state.versions.set(workflowId, archived.v);
    // Reports name agents by the pool only for work recorded before workflows kept those details.
    state.agents = this.hub.state.agents;
    state.archived = this.archive;
    // Deleted (or archived anew) while it was read, and forgotten then: this copy answers the one read only.
    if (!header || this.archive.header(workflowId) !== header) return state;
    // From its counts: Object.keys of 100,000 orders would hold the loop ~20 ms.
    const orders = countOrders(archived.workflow);
    this.cache.set(workflowId, { state, orders, header });
    this.cachedOrders += orders;
    // Oldest read first; the one just read stays, however big.
    for (const id of this.cache.keys()) {
      if (this.cache.size <= 1 || (this.cache.size <= CACHED_WORKFLOWS && this.cachedOrders <= CACHED_ORDERS)) break;
      this.drop(id);
    }
    return state;
  }

  /**
   * The cached copy of `workflowId`, if it is still the one archived: a workflow back in memory (its
   * eviction rolled back) may change and be archived anew, and the copy read before is then stale.
   */
  private cached(workflowId: string): { state: HubState; orders: number; header: ArchivedHeader } | undefined {
    const entry = this.cache.get(workflowId);
    const header = this.archive.header(workflowId);
    // By value: a follower's refresh reads the same headers again as new objects.
    if (entry && (entry.header.v !== header?.v || entry.header.archivedAt !== header.archivedAt || entry.header.createdAt !== header.createdAt)) {
      this.drop(workflowId);
      return undefined;
    }
    return entry;
  }

  private drop(workflowId: string): void {
    const entry = this.cache.get(workflowId);
    if (!entry) return;
    this.cache.delete(workflowId);
    this.cachedOrders -= entry.orders;
  }
}
