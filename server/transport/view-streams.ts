import type { Namespace, Socket } from 'socket.io';
import { HubError } from '../../shared/errors.ts';
import { diffJson } from '../../shared/json-diff.ts';
import type { Subscription } from '../../shared/schemas/monitor.ts';
import { isViewName, viewName, type ViewSpec } from '../../shared/schemas/views.ts';
import { versionOf } from '../domain/machinery/state.ts';
import { copyJson } from '../domain/machinery/transaction.ts';
import { workflowView } from '../domain/workflows/views.ts';
import { catalogBuild } from '../catalog-build.ts';
import type { CommittedBatch, StateWriter } from '../state-writer.ts';
import type { JournalRecord } from '../store/records.ts';
import type { SummaryView } from '../../shared/schemas/views.ts';
import { nextSummary, noteTouched, type Touched } from './summary-diff.ts';
import { room, type DerivedStreams, type PatchStream } from './patch-stream.ts';

/** One view somebody subscribed to. */
interface View {
  name: string;
  workflowId: string;
  spec: ViewSpec;
  /** Its value as last sent: a copy, never changed (patches in the history share its objects). */
  value: unknown;
  /** The workflow version it was last computed at (its stream's version is that of its last change). */
  computedAt: number;
  /** Since when (performance.now(), which a step of the wall clock does not move) nobody has followed it; undefined while somebody does. */
  idleSince: number | undefined;
  /** A summary view's: the stages, objectives and KPIs its workflow's changes touched since it was computed (summary-diff.ts). */
  touched: Touched;
}

/** A subscription to a view waiting for its workflow's catalog, and whether its socket unsubscribed from the view meanwhile. */
interface Waiting {
  name: string;
  unsubscribed: boolean;
}

export interface ViewStreamsOptions {
  /** A view nobody has followed for this long is dropped (a later subscriber starts it again). */
  idleMs: number;
}

/** How long a view nobody follows is kept computed, with its history, for subscribers that come back. */
export const VIEW_IDLE_MS = 30_000;

/**
 * Views one connection may follow at once, of one workflow and in all. Each distinct view is
 * computed and diffed at every change of its workflow, and an orders view's parameters make them
 * countless: without a bound, one monitor could make every change cost the hub thousands of views.
 */
export const MAX_VIEWS_PER_WORKFLOW = 64;
export const MAX_VIEWS_PER_CONNECTION = 4096;

/**
 * Why a socket may not follow one more view of `workflowId`, if it may not. Counted from its rooms,
 * so it holds under concurrent subscribes only when asked in the turn that joins the room.
 */
function tooManyViews(socket: Socket, workflowId: string): string | undefined {
  let total = 0;
  let ofWorkflow = 0;
  const prefix = `doc:${workflowId}/`;
  for (const name of socket.rooms) {
    if (!name.startsWith('doc:') || !isViewName(name.slice(4))) continue;
    total++;
    if (name.startsWith(prefix)) ofWorkflow++;
  }
  if (ofWorkflow >= MAX_VIEWS_PER_WORKFLOW) return `a connection follows at most ${MAX_VIEWS_PER_WORKFLOW} views of one workflow`;
  if (total >= MAX_VIEWS_PER_CONNECTION) return `a connection follows at most ${MAX_VIEWS_PER_CONNECTION} views`;
  return undefined;
}

/** Refuses (VALIDATION) a socket's subscription to view `name` of `workflowId` beyond the bounds; one it follows already is no more. */
export function checkViewBound(socket: Socket, workflowId: string, name: string): void {
  const refusal = socket.rooms.has(room(name)) ? undefined : tooManyViews(socket, workflowId);
  if (refusal) throw new HubError('VALIDATION', `${refusal}: unsubscribe from one first`);
}

/**
 * The views monitors follow: each is one more stream of the patch stream, named for the view,
 * with its own room. Its versions are its workflow's. At each flush, every followed view of a
 * workflow that changed is computed from the state as it is, labelled with the workflow's
 * current version, and what differs from its previous value goes into its stream as a change:
 * kept for resuming and broadcast like a document's. A view's value may thus show changes still
 * on their way to disk (as a document's snapshot may); a rollback sends every view's
 * subscribers back to a snapshot.
 */
export class ViewStreams implements DerivedStreams {
  private readonly views = new Map<string, View>();
  private readonly byWorkflow = new Map<string, Set<View>>();
  /** Workflows with a change committed since the last refresh. */
  private dirty = new Set<string>();
  /**
   * Per workflow, versions that views showed before a rollback took them back: those numbers
   * are given again to other changes, so a subscriber holding one gets a snapshot, not patches.
   */
  private readonly revoked = new Map<string, { above: number; upTo: number }>();
  /** Per socket, its subscriptions waiting for a catalog: an unsubscribe that comes meanwhile must win over their join. */
  private readonly waiting = new WeakMap<Socket, Set<Waiting>>();
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(
    private readonly nsp: Namespace,
    private readonly hub: StateWriter,
    private readonly patches: PatchStream,
    private readonly options: ViewStreamsOptions = { idleMs: VIEW_IDLE_MS },
  ) {
    patches.attach(this);
    hub.onCommit((batch) => this.onCommit(batch));
    // Noted as applied, not as stored: a view is computed from the state, which may hold changes not stored yet.
    hub.onApply((record) => this.noteTouched(record));
    this.sweeper = setInterval(() => this.dropIdle(performance.now()), Math.max(options.idleMs / 2, 10)).unref();
  }

  /**
   * Subscribes a socket to a view of a workflow in memory (NOT_FOUND when there is none;
   * VALIDATION for an orders view whose `before` names no order). With a version it holds still in
   * the view's history it gets the missed patches, otherwise the view's value now.
   */
  subscribe(socket: Socket, workflowId: string, spec: ViewSpec, version?: number, epoch?: string): Subscription | Promise<Subscription> {
    return this.follow(socket, workflowId, spec, version, epoch, undefined);
  }

  /** Stops a socket following a view, including subscriptions to it still waiting for its catalog. */
  unsubscribe(socket: Socket, name: string): void {
    for (const waiting of this.waiting.get(socket) ?? []) if (waiting.name === name) waiting.unsubscribed = true;
    this.patches.unsubscribe(socket, name);
  }

  /** `subscribe`, for a subscription that has waited for the catalog (`waiting`) or not yet. */
  private follow(socket: Socket, workflowId: string, spec: ViewSpec, version: number | undefined, epoch: string | undefined, waiting: Waiting | undefined): Subscription | Promise<Subscription> {
    const name = viewName(workflowId, spec);
    checkViewBound(socket, workflowId, name);
    // A big workflow's catalog is built a slice per turn first; then this looks again (the bounds
    // included: others may have joined meanwhile), in the turn it answers and joins in.
    const build = catalogBuild(this.hub.state, workflowId);
    if (build) {
      const entry = waiting ?? this.wait(socket, name);
      return build
        .then(() => {
          // Joining a room now would keep a socket that is gone in it for good.
          if (socket.disconnected) throw new HubError('UNAVAILABLE', 'the connection closed while the view was being computed');
          return this.follow(socket, workflowId, spec, version, epoch, entry);
        })
        .finally(() => this.waiting.get(socket)?.delete(entry));
    }
    // Unsubscribed from while it waited: answered, but out of the room (unless a later subscription put it there).
    const unsubscribed = waiting?.unsubscribed === true && !socket.rooms.has(room(name));
    const view = this.views.get(name) ?? this.start(name, workflowId, spec);
    // Any change not yet in the stream goes in now: the answer and the broadcast meet at its version.
    if (this.update(view)) this.patches.schedule();
    const revoked = this.revoked.get(workflowId);
    const held = version !== undefined && revoked && version > revoked.above && version <= revoked.upTo ? undefined : version;
    const answer = this.patches.subscribe(socket, name, held, epoch);
    if (unsubscribed) this.patches.unsubscribe(socket, name);
    return answer;
  }

  /** Notes a socket's subscription to a view as waiting for the view's catalog. */
  private wait(socket: Socket, name: string): Waiting {
    let waiting = this.waiting.get(socket);
    if (!waiting) this.waiting.set(socket, (waiting = new Set()));
    const entry = { name, unsubscribed: false };
    waiting.add(entry);
    return entry;
  }

  /** Computes a view for its first subscriber and starts its stream at the workflow's version. */
  private start(name: string, workflowId: string, spec: ViewSpec): View {
    const computedAt = versionOf(this.hub.state, workflowId);
    const value = copyJson(workflowView(this.hub.state, workflowId, spec));
    const view: View = { name, workflowId, spec, value, computedAt, idleSince: undefined, touched: new Map() };
    this.views.set(name, view);
    let views = this.byWorkflow.get(workflowId);
    if (!views) this.byWorkflow.set(workflowId, (views = new Set()));
    views.add(view);
    this.patches.open(name, computedAt);
    return view;
  }

  /** Recomputes a view if its workflow changed since, and sends the difference into its stream; true when there was one. */
  private update(view: View): boolean {
    const version = versionOf(this.hub.state, view.workflowId);
    if (version === view.computedAt || !this.hub.state.workflows.has(view.workflowId)) return false;
    view.computedAt = version;
    const fresh = workflowView(this.hub.state, view.workflowId, view.spec);
    let value: unknown;
    let ops;
    if (view.spec.kind === 'summary') ({ value, ops } = nextSummary(view.value as SummaryView, fresh as SummaryView, view.touched));
    else ops = diffJson(view.value, (value = copyJson(fresh)));
    view.touched = new Map();
    if (ops.length === 0) return false;
    view.value = value;
    this.patches.change(view.name, version, ops);
    return true;
  }

  /** Brings the followed views of workflows that changed up to date (the patch stream's flush calls this). */
  refresh(): void {
    const dirty = this.dirty;
    this.dirty = new Set();
    for (const workflowId of dirty) {
      // A view nobody follows now is brought up to date when somebody subscribes again.
      const followed = [...(this.byWorkflow.get(workflowId) ?? [])].filter((view) => this.patches.followed(view.name));
      if (followed.length === 0) continue;
      // Its catalog was dropped (the index rebuilt after an unexpected error): built again a slice
      // per turn, and the views left for the flush after that, rather than holding this one.
      const build = catalogBuild(this.hub.state, workflowId);
      if (build) {
        this.dirty.add(workflowId);
        void build.then(() => this.patches.schedule(), () => undefined);
        continue;
      }
      for (const view of followed) this.update(view);
    }
  }

  /** The value a view holds at its stream's version. */
  valueOf(name: string): unknown {
    return this.views.get(name)?.value;
  }

  /** Notes what a record changes of the stages, objectives and KPIs of workflows with a summary view. */
  private noteTouched(record: JournalRecord): void {
    for (const change of record.changes) {
      const views = this.byWorkflow.get(change.doc);
      if (!views) continue;
      for (const view of views) if (view.spec.kind === 'summary') for (const op of change.ops) noteTouched(view.touched, op.path);
    }
  }

  private onCommit(batch: CommittedBatch): void {
    // A follower's records were applied just now; a leader's were noted as applied already, which noting again does not change.
    if (this.hub.currentRole === 'follower') for (const record of batch.records) this.noteTouched(record);
    for (const record of batch.records) {
      for (const change of record.changes) {
        // Version 0: the workflow left memory for the archive; its views end with it. Changed since
        // they were last computed (no flush came between), they lack its last changes, which the
        // state no longer holds: their subscribers resync, to the final value the archive answers.
        // They stay in their rooms: the archived views are still theirs, until the workflow is deleted.
        if (change.v === 0) this.forgetWorkflow(change.doc, this.dirty.has(change.doc) ? 'the workflow was archived' : undefined, true);
        else if (this.byWorkflow.has(change.doc)) this.dirty.add(change.doc);
      }
    }
    if (this.dirty.size > 0) this.patches.schedule();
  }

  /**
   * After a rollback, views may hold values of changes that were undone, under versions that
   * other changes will take: every view is dropped, its subscribers told to resync, and those
   * versions refused for resuming. The views of a workflow that `left` memory end as at its
   * eviction, their subscribers out of their rooms.
   */
  onRollback(left: ReadonlySet<string>, reason: string): void {
    for (const [workflowId, views] of this.byWorkflow) {
      const above = versionOf(this.hub.state, workflowId);
      let upTo = above;
      for (const view of views) upTo = Math.max(upTo, view.computedAt);
      if (upTo === above) continue;
      const earlier = this.revoked.get(workflowId);
      this.revoked.set(workflowId, { above: Math.min(above, earlier?.above ?? above), upTo: Math.max(upTo, earlier?.upTo ?? upTo) });
    }
    for (const workflowId of left) this.forgetWorkflow(workflowId, reason);
    for (const view of [...this.views.values()]) this.drop(view);
    // Every follower of a view, also of an archived workflow's (no view is kept for it), which a
    // replica loaded again may have brought back to memory.
    for (const name of this.viewRooms()) this.nsp.to(name).emit('resync', { doc: name.slice(4), reason });
  }

  /** The names of the rooms of views that sockets are in. */
  private viewRooms(): string[] {
    return [...this.nsp.adapter.rooms.keys()].filter((name) => name.startsWith('doc:') && isViewName(name.slice(4)));
  }

  /**
   * Drops the views of a workflow that left memory; their subscribers are told to resync first,
   * with `resync` as the reason, when given, and leave their rooms unless `archived`: followers of
   * an archived workflow's views stay, to be told when it is deleted (`deleted`).
   */
  private forgetWorkflow(workflowId: string, resync?: string, archived = false): void {
    for (const view of [...(this.byWorkflow.get(workflowId) ?? [])]) {
      this.drop(view);
      if (resync) this.nsp.to(room(view.name)).emit('resync', { doc: view.name, reason: resync });
      if (!archived) this.nsp.in(room(view.name)).socketsLeave(room(view.name));
    }
    this.revoked.delete(workflowId);
    this.dirty.delete(workflowId);
  }

  /**
   * Archived workflows were deleted: whoever follows one of their views (joined while it was live,
   * or since, to its final value) is told to resync, and leaves. One pass over the rooms, whatever
   * the number deleted.
   */
  deleted(workflowIds: ReadonlySet<string>, reason: string): void {
    for (const name of this.viewRooms()) {
      const doc = name.slice(4);
      if (!workflowIds.has(doc.slice(0, doc.indexOf('/')))) continue;
      this.nsp.to(name).emit('resync', { doc, reason });
      this.nsp.in(name).socketsLeave(name);
    }
  }

  /** Drops views nobody has followed for `idleMs`. */
  private dropIdle(now: number): void {
    for (const view of [...this.views.values()]) {
      if (this.patches.followed(view.name)) view.idleSince = undefined;
      else if (view.idleSince === undefined) view.idleSince = now;
      else if (now - view.idleSince >= this.options.idleMs) this.drop(view);
    }
  }

  /** Forgets a view and its stream (what it has pending goes out first). */
  private drop(view: View): void {
    this.patches.forget(view.name);
    this.views.delete(view.name);
    const views = this.byWorkflow.get(view.workflowId);
    views?.delete(view);
    if (views?.size === 0) this.byWorkflow.delete(view.workflowId);
  }

  /** How many views are computed now (for tests and metrics). */
  get size(): number {
    return this.views.size;
  }

  /** Stops the timer that drops idle views. */
  close(): void {
    clearInterval(this.sweeper);
  }
}
