import { randomBytes } from 'node:crypto';
import type { Namespace, Socket } from 'socket.io';
import { appendAll } from '../../shared/append-all.ts';
import { compactOps, type PatchOp } from '../../shared/patch.ts';
import type { PatchMessage, Subscription } from '../../shared/schemas/monitor.ts';
import { INLINE_REPLY_BYTES } from '../../shared/schemas/transfer.ts';
import { isViewName } from '../../shared/schemas/views.ts';
import { AGENTS_DOC, docKeys, docRoot, jsonBytesWithin, jsonSmallerThan, versionOf, workflowSmallerThan, type DocKey } from '../domain/machinery/state.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { pinnedJsonParts } from '../pinned-json.ts';
import { TimeSlice } from '../time-slice.ts';
import type { CommittedBatch, RolledBack, StateWriter } from '../state-writer.ts';
import type { ResumePoint } from '../store/store.ts';
import { EncodedJson } from './encoded-json.ts';
import { viewBody } from './replies.ts';
import { partsOf, type Transfers } from './transfers.ts';

/** A subscription answer, with how many rollbacks came before it was built. */
interface Answer {
  doc: DocKey;
  /** None when a rollback ended its big snapshot while it was read: it is built again. */
  subscription: Subscription | undefined;
  rollbacks: number;
}

/** The `@agents` snapshot before any agent registered. */
const EMPTY_POOL = new EncodedJson('{}');

interface VersionedOps {
  /** The version the change starts from: v - 1 for a document, the previous change's for a view. */
  from: number;
  v: number;
  ops: PatchOp[];
  /** Its ops hold nothing compactOps could shorten (DocChange.plain). */
  plain?: true | undefined;
  /** About how many bytes its ops' JSON holds, once it is kept in a history. */
  bytes?: number;
}

/**
 * Bytes of changes a document's history keeps at most, besides `resumeVersions`. A resume is
 * answered with patches only when what it missed is under 1 MB once compacted, so older history
 * seldom serves; unbounded, an agent checkpointing 64 KB `details` with each progress update kept
 * some 64 MB per followed workflow.
 */
export const HISTORY_BYTES = 2 * INLINE_REPLY_BYTES;

/** The stream of one document: what subscribers have been sent, what waits, and recent history. */
interface DocStream {
  /** The last committed version. */
  committed: number;
  /** The version the broadcast has reached (the `to` of the last message). */
  sent: number;
  /** Committed changes not broadcast yet. */
  pending: VersionedOps[];
  /** Versions at which a message must end, because a subscriber's snapshot starts there. */
  cuts: Set<number>;
  /**
   * Recent committed changes, oldest first, for subscribers that resume: those from index
   * `dropped` on. Entries before it are past the history bound and are cut off in bulk, so that
   * a change never costs a shift of the whole history.
   */
  recent: VersionedOps[];
  dropped: number;
  /** About how many bytes of JSON the kept entries (from `dropped` on) hold, and those before it that wait to be cut off. */
  keptBytes: number;
  droppedBytes: number;
  /**
   * Whether anyone subscribed to the document in this run of the hub. Until then nobody holds a
   * version of it to resume from (versions of another run are never resumed), so no history is
   * kept: at 10k changes/s, keeping 1,000 versions held each change for 100–200 ms, past a
   * scavenge or two, so that V8 moved it to the old generation only for it to die there.
   */
  followed: boolean;
}

export interface PatchStreamOptions {
  /** How often pending changes are broadcast (0: every tick). */
  intervalMs: number;
  /** How many recent versions per document are kept for resuming subscribers. */
  resumeVersions: number;
  /** A subscriber with more packets than this waiting in its buffer is dropped to a resync. */
  maxQueuedPackets: number;
}

/** The room of a document's (or a view's) subscribers. */
export const room = (doc: DocKey) => `doc:${doc}`;

/**
 * Streams that are no document's: views, named `<workflowId>/…`. Their changes come from
 * `change`, not from commits; they go to their own room only, never to subscribers of everything.
 */
export interface DerivedStreams {
  /** Brings every followed stream up to date with the state (each flush, before the broadcast). */
  refresh(): void;
  /** The value a stream holds at its last version. */
  valueOf(name: string): unknown;
  /** After a rollback: each stream starts over (its subscribers are told to resync); those of workflows that `left` memory end. */
  onRollback(left: ReadonlySet<string>, reason: string): void;
  /** Archived workflows were deleted: the followers of their streams are told to resync, and leave. */
  deleted(workflowIds: ReadonlySet<string>, reason: string): void;
}

/**
 * Packets waiting in the connection's engine.io write buffer. engine.io keeps them there while
 * the peer does not read (the transport stays unwritable); its type marks the field private,
 * but it has been the same public-in-practice array since engine.io 4.
 */
function queuedPackets(socket: Socket): number {
  return (socket.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer?.length ?? 0;
}
const ALL = 'all';
/** The room of the followers of everything that unsubscribed from one document. */
const LEFT_OUT = 'left-out:';
const leftOutRoom = (doc: DocKey) => `${LEFT_OUT}${doc}`;

/**
 * Bytes of snapshots and patches one subscribeAll answer holds inline; past them, snapshots come as
 * transfers. Unbounded, the answer for a few hundred mid-size workflows was one message of hundreds
 * of MB: a string that big per monitor on the hub, and over the 100 MiB a Node client's WebSocket
 * takes, which closed the connection at every reconnect's subscribeAll, for ever.
 */
export const ANSWER_INLINE_BYTES = 16 * INLINE_REPLY_BYTES;

/** Inline bytes an answer being built has left (see ANSWER_INLINE_BYTES). */
interface InlineBudget {
  left: number;
}

/** How long a document's serialised snapshot is kept for further subscribers at the same version. */
const SNAPSHOT_REUSE_MS = 1000;

/**
 * Turns committed changes into the patch stream monitors see. Changes are coalesced per tick and
 * broadcast once per document to a room (encoded once however many subscribe); each message
 * says which version it starts from and ends at. A bounded history per document lets a
 * reconnecting subscriber resume from the version it holds. A subscriber that stops reading is
 * taken out of the rooms before its buffer grows past a bound, and told to resync once drained.
 */
export class PatchStream {
  private readonly docs = new Map<DocKey, DocStream>();
  /** Documents with pending changes: a flush looks at these only, not at every document. */
  private dirty = new Set<DocKey>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether anyone subscribed to every document: each then keeps its history from its creation on. */
  private followedAll = false;
  /** Subscribers dropped for falling behind. */
  stalledCount = 0;
  /**
   * Snapshots serialised for subscribers, by document, kept briefly: when a hundred monitors
   * (re)connect at once, the document is serialised once, not once per subscriber (each took
   * ~9 ms for a 500-order workflow, and the hundred stalled the hub's loop for ~1 s).
   */
  private readonly snapshots = new Map<DocKey, { version: number; state: EncodedJson }>();
  /** A kept snapshot's bytes, for those who get it as a transfer: shared, so held once however many read it. */
  private readonly snapshotParts = new WeakMap<EncodedJson, Buffer[]>();
  /**
   * Documents over INLINE_REPLY_BYTES being serialised (a slice per turn) or serialised in the last
   * SNAPSHOT_REUSE_MS, for transfers. A subscriber that comes while one is under way shares it,
   * though its version is older by then: the gap to the next patch makes it catch up from history.
   */
  private readonly bigSnapshots = new Map<DocKey, { version: number; parts: Promise<Buffer[]>; done: boolean }>();
  private snapshotsExpiry: ReturnType<typeof setTimeout> | undefined;
  /**
   * This run of the hub, until a rollback: versions handed out before it may show changes that
   * never reached disk and whose numbers later changes take, so nobody resumes from them.
   */
  epoch: string;
  /**
   * The epoch of the run that stopped cleanly into the state loaded (StateWriter.resumed), with
   * the workflows deleted from the archive in it: its versions are this run's first ones. Each run
   * takes an epoch of its own all the same, so that a copy of the directory restored after the hub
   * ran on resumes only versions of the stop it was copied at, never the later run's.
   */
  private previous: { epoch: string; deleted: ReadonlySet<string> } | undefined;
  /**
   * The workflows deleted from the archive in this epoch: a new workflow may take one's id, with
   * versions from 1 again, so a version held of it resumes nothing (see resumable).
   */
  private readonly deletedInEpoch = new Set<string>();
  /** The views, once attached. */
  private derived: DerivedStreams | undefined;
  /** Rollbacks (and replicas loaded again) so far: an answer built before one may show what it undid. */
  private rollbacks = 0;

  constructor(
    private readonly nsp: Namespace,
    private readonly hub: StateWriter,
    private readonly options: PatchStreamOptions,
    private readonly transfers: Transfers,
  ) {
    this.epoch = newEpoch();
    if (hub.resumed) this.previous = { epoch: hub.resumed.epoch, deleted: new Set(hub.resumed.deleted) };
    // Documents loaded from disk are committed up to their version.
    for (const doc of docKeys(hub.state)) this.stream(doc, versionOf(hub.state, doc));
    hub.onCommit((batch) => this.onCommit(batch));
    hub.onRollback((rolledBack) => this.onRollback(rolledBack));
  }

  /** Keeps a committed change in the document's recent history, for subscribers that resume. */
  private remember(stream: DocStream, entry: VersionedOps): void {
    const { recent } = stream;
    // The walk stops past the bound: an entry bigger than that is not kept at all.
    entry.bytes = jsonBytesWithin(entry.ops, HISTORY_BYTES) ?? HISTORY_BYTES + 1;
    recent.push(entry);
    stream.keptBytes += entry.bytes;
    const byVersions = recent.length - this.options.resumeVersions;
    while (stream.dropped < recent.length && (stream.dropped < byVersions || stream.keptBytes > HISTORY_BYTES)) {
      const bytes = recent[stream.dropped++]!.bytes!;
      stream.keptBytes -= bytes;
      stream.droppedBytes += bytes;
    }
    if (stream.dropped >= Math.max(64, this.options.resumeVersions) || stream.droppedBytes > HISTORY_BYTES) {
      recent.splice(0, stream.dropped);
      stream.dropped = 0;
      stream.droppedBytes = 0;
    }
  }

  /** The stream of a document, started at `committed` (the version its history begins after). */
  private stream(doc: DocKey, committed: number): DocStream {
    let stream = this.docs.get(doc);
    if (!stream) {
      stream = { committed, sent: committed, pending: [], cuts: new Set(), recent: [], dropped: 0, keptBytes: 0, droppedBytes: 0, followed: this.followedAll };
      this.docs.set(doc, stream);
    }
    return stream;
  }

  private onCommit(batch: CommittedBatch): void {
    for (const record of batch.records) {
      for (const change of record.changes) {
        // Version 0: the document left memory for the archive, unchanged; its stream ends.
        if (change.v === 0) {
          this.forget(change.doc);
          continue;
        }
        // First seen in a commit: its stream starts just before this change (from 0 for a new workflow).
        this.take(change.doc, this.stream(change.doc, change.v - 1), change.v, change.ops, change.plain);
      }
    }
    if (this.dirty.size > 0) this.schedule();
  }

  /** Takes a change of a stream at version `v`: pending for the next flush, and kept for resuming. */
  private take(doc: DocKey, stream: DocStream, v: number, ops: PatchOp[], plain?: true): void {
    if (v <= stream.committed) return;
    const from = stream.committed;
    stream.committed = v;
    if (stream.pending.length === 0 && !this.followed(doc)) {
      // Nobody is in a room for it: the change counts as broadcast now. Held until the next
      // flush instead, every change outlived a scavenge or two at 10k/s and was promoted to
      // die in the old generation, whose growth then brought on mark-compacts.
      stream.cuts.delete(v);
      stream.sent = v;
      if (stream.followed) this.remember(stream, { from, v, ops });
      return;
    }
    const entry = { from, v, ops, plain };
    stream.pending.push(entry);
    this.dirty.add(doc);
    if (stream.followed) this.remember(stream, entry);
  }

  /** Has a flush run after `intervalMs`, unless one is due already. */
  schedule(): void {
    this.timer ??= setTimeout(() => this.flush(), this.options.intervalMs);
  }

  /** Attaches the views: refreshed at each flush, their values served as snapshots. */
  attach(derived: DerivedStreams): void {
    this.derived = derived;
  }

  /** Starts the stream of a view at version `v` (its first value), unless it has one. */
  open(name: string, v: number): void {
    this.stream(name, v);
  }

  /** A change of a view taking it to version `v` (a workflow version), as a commit brings a document's. */
  change(name: string, v: number, ops: PatchOp[]): void {
    this.take(name, this.stream(name, v - 1), v, ops);
  }

  /** Broadcasts what is pending, one message per document (more when a cut falls inside). */
  flush(): void {
    this.timer = undefined;
    this.dropStalled();
    this.derived?.refresh();
    const dirty = this.dirty;
    this.dirty = new Set();
    for (const doc of dirty) this.broadcast(doc, this.docs.get(doc)!);
  }

  /** Sends a document's pending changes, as one message (more when a cut falls inside). */
  private broadcast(doc: DocKey, stream: DocStream): void {
    if (stream.pending.length === 0) return;
    if (!this.followed(doc)) {
      // Nobody would receive the message: skip building it. A later subscriber starts from a
      // snapshot or the recent history, never from a broadcast it was not in the room for.
      for (const entry of stream.pending) stream.cuts.delete(entry.v);
      stream.sent = stream.pending[stream.pending.length - 1]!.v;
      stream.pending = [];
      return;
    }
    let from = stream.sent;
    let ops: PatchOp[] = [];
    for (const entry of stream.pending) {
      appendAll(ops, entry.ops);
      if (stream.cuts.has(entry.v) || entry === stream.pending[stream.pending.length - 1]) {
        // A message of one change the transaction found nothing to compact in (a bulk command's) goes as it is.
        this.emit({ doc, from, to: entry.v, ops: entry.plain === true && entry.from === from ? ops : compactOps(ops) });
        stream.cuts.delete(entry.v);
        from = entry.v;
        ops = [];
      }
    }
    stream.sent = from;
    stream.pending = [];
  }

  /**
   * Drops a document's stream: its recent history and any kept snapshot, once the document leaves
   * memory (after its last change committed). Changes not broadcast yet are sent first. A
   * subscriber that resumes it later gets a snapshot.
   */
  forget(doc: DocKey): void {
    const stream = this.docs.get(doc);
    if (stream) this.broadcast(doc, stream);
    this.docs.delete(doc);
    this.dirty.delete(doc);
    this.snapshots.delete(doc);
    this.bigSnapshots.delete(doc);
    // Nothing more is sent for it; a workflow made later with its id (once deleted from the archive) is followed, as any new one.
    if (this.nsp.adapter.rooms.has(leftOutRoom(doc))) this.nsp.in(leftOutRoom(doc)).socketsLeave(leftOutRoom(doc));
  }

  /** Whether any socket is in a room that gets `doc`'s patches. */
  followed(doc: DocKey): boolean {
    const rooms = this.nsp.adapter.rooms;
    return (rooms.get(room(doc))?.size ?? 0) > 0 || (!isViewName(doc) && (rooms.get(ALL)?.size ?? 0) > 0);
  }

  private emit(message: PatchMessage): void {
    const doc = message.doc;
    if (isViewName(doc)) return void this.nsp.to(room(doc)).emit('patch', message);
    const followers = this.nsp.to([room(doc), ALL]);
    // Followers of everything that unsubscribed from it are left out (looked up only when some did).
    (this.nsp.adapter.rooms.has(leftOutRoom(doc)) ? followers.except(leftOutRoom(doc)) : followers).emit('patch', message);
  }

  /**
   * Subscribes a socket to one document. With the version it holds, and that version still in the
   * recent history, it gets the missed patches; otherwise the document as it is now.
   */
  subscribe(socket: Socket, doc: DocKey, version?: number, epoch?: string): Subscription | Promise<Subscription> {
    const subscription = this.catchUp(socket, doc, this.resumable(doc, epoch) ? version : undefined);
    void socket.join(room(doc));
    void socket.leave(leftOutRoom(doc));
    return subscription;
  }

  /**
   * Subscribes a socket to every document (and to documents created later). The answer is built a
   * slice at a time: a thousand workflows' snapshots would hold the hub for a second. The socket
   * joins first, so a document changed before its turn comes has its patches sent (the client holds
   * them until the answer, as for a transfer).
   */
  async subscribeAll(
    socket: Socket,
    versions: Record<string, number>,
    epoch: string | undefined,
    visible: (doc: DocKey) => boolean,
    scope: readonly string[] | undefined,
  ): Promise<Subscription[]> {
    this.followedAll = true;
    // Told to call subscribeAll again after falling behind: its scope's rooms of workflows not created yet are joined there only.
    socket.data.followsAll = true;
    socket.data.scope = scope;
    // The pool before its first agent too, as {} (see snapshotOf).
    const docs = this.hub.state.agents ? docKeys(this.hub.state) : [...docKeys(this.hub.state), AGENTS_DOC];
    if (scope) void socket.join([...scope, '@agents'].map(room));
    else void socket.join(ALL);
    // Everything again: what it unsubscribed from before is followed too.
    for (const name of [...socket.rooms]) if (name.startsWith(LEFT_OUT)) void socket.leave(name);
    const budget: InlineBudget = { left: ANSWER_INLINE_BYTES };
    // Held in the epoch asked about: a rollback meanwhile makes the rest snapshots.
    let answers = await this.answerEach(socket, docs, visible, budget, (doc) => (this.resumable(doc, epoch) && Object.hasOwn(versions, doc) ? versions[doc] : undefined));
    // A rollback while it was built may have undone what the answers built before it show, and its resync notices
    // went out before this answer, which would put the undone state back: those answers are built again.
    const stale = (answer: Answer) => answer.rollbacks !== this.rollbacks;
    while (answers.some(stale) && !socket.disconnected) {
      const again = await this.answerEach(socket, answers.filter(stale).map((answer) => answer.doc), visible, budget, () => undefined);
      answers = [...answers.filter((answer) => !stale(answer)), ...again];
    }
    // Left stale only when the socket went: nobody reads this answer.
    return answers.flatMap((answer) => (answer.subscription ? [answer.subscription] : []));
  }

  /** The answers for `docs`, each built in a slice of its own, with the rollbacks before it; those archived meanwhile or not visible are left out. */
  private async answerEach(
    socket: Socket,
    docs: readonly DocKey[],
    visible: (doc: DocKey) => boolean,
    budget: InlineBudget,
    held: (doc: DocKey) => number | undefined,
  ): Promise<Answer[]> {
    const answers: Array<Promise<Answer>> = [];
    const slice = new TimeSlice();
    for (const doc of docs) {
      if (slice.spent) {
        await slice.next();
        if (socket.disconnected) break;
      }
      // Archived meanwhile, or out of the token's sight since a reload: left out, as if asked for now.
      if ((doc !== AGENTS_DOC && docRoot(this.hub.state, doc) === undefined) || !visible(doc)) continue;
      const rollbacks = this.rollbacks;
      const answer = Promise.resolve(this.catchUp(socket, doc, held(doc), budget)).then(
        (subscription): Answer => ({ doc, subscription, rollbacks }),
        // A big snapshot a rollback ended (its pin aborted, before this runs) is built again with the other stale answers.
        (error: unknown): Answer => {
          if (this.rollbacks === rollbacks) throw error;
          return { doc, subscription: undefined, rollbacks };
        },
      );
      // Another failure may come while later documents are answered: handled now, or Node would end the hub
      // for an unhandled rejection; Promise.all still answers with it.
      answer.catch(() => undefined);
      answers.push(answer);
    }
    return Promise.all(answers);
  }

  /**
   * Stops following a document, also when the socket follows everything (its patches no longer
   * come). Only a document in memory is left out: a view never goes to followers of everything,
   * and an archived workflow sends no patches (left out, the room would stay for good).
   */
  unsubscribe(socket: Socket, doc: DocKey): void {
    void socket.leave(room(doc));
    if (socket.rooms.has(ALL) && (doc === AGENTS_DOC || this.hub.state.workflows.has(doc))) void socket.join(leftOutRoom(doc));
  }

  /** The answer for `doc` from `version`; within `budget` (a subscribeAll's) when given, which it spends. */
  private catchUp(socket: Socket, doc: DocKey, version: number | undefined, budget?: InlineBudget): Subscription | Promise<Subscription> {
    // No stream yet: the document was created after start-up and its creation is not committed yet.
    const stream = this.stream(doc, 0);
    stream.followed = true;
    const oldest = stream.recent[stream.dropped];
    if (version !== undefined && version <= stream.committed && (version === stream.committed || (oldest && oldest.from <= version))) {
      const ops: PatchOp[] = [];
      for (let i = stream.dropped; i < stream.recent.length; i++) {
        const entry = stream.recent[i]!;
        if (entry.v > version) appendAll(ops, entry.ops);
      }
      const missed = compactOps(ops);
      // More than a big reply's worth (or than the answer has left): the snapshot instead, which comes as a transfer when it is big too, not one unbounded message.
      const bytes = jsonBytesWithin(missed, Math.min(INLINE_REPLY_BYTES, budget?.left ?? INLINE_REPLY_BYTES));
      if (bytes !== undefined) {
        if (budget) budget.left -= bytes;
        if (stream.sent < stream.committed) stream.cuts.add(stream.committed);
        return { doc, epoch: this.epoch, mode: 'patches', from: version, to: stream.committed, ops: missed };
      }
    }
    // A view's stream is at its value's version: the views brought it up to date just before.
    const current = isViewName(doc) ? stream.committed : versionOf(this.hub.state, doc);
    // Changes up to `current` may still be on their way to disk; the broadcast will end a message there.
    if (current > stream.sent) stream.cuts.add(current);
    if (isViewName(doc)) {
      const value = this.snapshotOf(doc, current);
      if (value) return { doc, epoch: this.epoch, mode: 'snapshot', version: current, ...viewBody(value, socket, this.transfers) };
    }
    const root = docRoot(this.hub.state, doc);
    const small = root === undefined || (doc === AGENTS_DOC ? jsonSmallerThan(root, INLINE_REPLY_BYTES) : workflowSmallerThan(root as unknown as Workflow, INLINE_REPLY_BYTES));
    if (!small) return this.transferOf(socket, doc, current);
    const state = this.snapshotOf(doc, current);
    if (budget && state) {
      // Its length in UTF-16 units: about its bytes.
      if (state.json.length > budget.left) return { doc, epoch: this.epoch, mode: 'snapshot', version: current, transfer: this.transfers.offer(socket, this.partsOfSnapshot(state)) };
      budget.left -= state.json.length;
    }
    return { doc, epoch: this.epoch, mode: 'snapshot', version: current, state };
  }

  /** A snapshot of a big document as a transfer: serialised a slice per turn, shared by whoever subscribes meanwhile. */
  private async transferOf(socket: Socket, doc: DocKey, current: number): Promise<Subscription> {
    let big = this.bigSnapshots.get(doc);
    if (!big || (big.done && big.version !== current)) {
      const entry = { version: current, parts: pinnedJsonParts(this.hub.state, doc).then(({ parts }) => parts), done: false };
      this.bigSnapshots.set(doc, entry);
      entry.parts.then(
        () => {
          entry.done = true;
          setTimeout(() => this.bigSnapshots.get(doc) === entry && this.bigSnapshots.delete(doc), SNAPSHOT_REUSE_MS).unref();
        },
        () => this.bigSnapshots.get(doc) === entry && this.bigSnapshots.delete(doc),
      );
      big = entry;
    }
    const parts = await big.parts;
    return { doc, epoch: this.epoch, mode: 'snapshot', version: big.version, transfer: this.transfers.offer(socket, parts) };
  }

  /** A kept snapshot's bytes in transfer parts, made once for all who read it so. */
  private partsOfSnapshot(state: EncodedJson): Buffer[] {
    let parts = this.snapshotParts.get(state);
    if (!parts) {
      parts = partsOf(Buffer.from(state.json));
      this.snapshotParts.set(state, parts);
    }
    return parts;
  }

  /** The document's state at `version` (its current one), serialised once for all who subscribe at it. */
  private snapshotOf(doc: DocKey, version: number): EncodedJson | null {
    const root = isViewName(doc) ? this.derived?.valueOf(doc) : docRoot(this.hub.state, doc);
    // The pool before its first agent is an empty one (PROTOCOL: an object of Agent by id), not a missing document.
    if (root === undefined) return doc === AGENTS_DOC ? EMPTY_POOL : null;
    const kept = this.snapshots.get(doc);
    if (kept?.version === version) return kept.state;
    const state = new EncodedJson(JSON.stringify(root));
    this.snapshots.set(doc, { version, state });
    this.snapshotsExpiry ??= setTimeout(() => {
      this.snapshots.clear();
      this.snapshotsExpiry = undefined;
    }, SNAPSHOT_REUSE_MS).unref();
    return state;
  }

  /** Packets waiting unread, summed over every monitor connection. */
  queuedPackets(): number {
    let total = 0;
    for (const socket of this.nsp.sockets.values()) total += queuedPackets(socket);
    return total;
  }

  /**
   * Takes subscribers that stopped reading out of every room; they resync once their buffer drains.
   * One still behind is taken out again of the rooms it joined since (it may still send: a
   * subscription it asked for meanwhile would otherwise pile up its patches until it reads).
   */
  private dropStalled(): void {
    for (const socket of this.nsp.sockets.values()) {
      if (queuedPackets(socket) <= this.options.maxQueuedPackets) continue;
      const rooms = [...socket.rooms].filter((r) => r.startsWith('doc:'));
      const left = socket.data.stalled as { rooms: Set<string>; followsAll: boolean } | undefined;
      if (left) {
        for (const name of rooms) left.rooms.add(name);
        left.followsAll ||= socket.data.followsAll === true;
        for (const name of [...rooms, ALL]) void socket.leave(name);
        continue;
      }
      this.stalledCount++;
      const stalled = { rooms: new Set(rooms), followsAll: socket.data.followsAll === true };
      socket.data.stalled = stalled;
      for (const name of [...rooms, ALL]) void socket.leave(name);
      socket.conn.once('drain', () => {
        socket.data.stalled = undefined;
        if (stalled.followsAll) socket.emit('resync', { doc: '*', reason: 'fell behind' });
        for (const name of stalled.rooms) socket.emit('resync', { doc: name.slice(4), reason: 'fell behind' });
      });
    }
  }

  /**
   * After a rollback, subscribers may hold versions that never reached disk: they start over. So
   * do they after a follower loaded its replica again: its documents jumped past the history kept.
   * A document no longer in memory ends as an evicted one does; its subscribers are told to resync,
   * and are answered NOT_FOUND (or the archived copy). One back in memory (its eviction was among
   * the records a truncation deleted) starts a stream again, and its subscribers resync too.
   */
  private onRollback({ left, reloaded }: RolledBack): void {
    this.newEpoch();
    this.rollbacks++;
    // Versions rolled back are given again to other changes: a kept snapshot may no longer match its version.
    this.snapshots.clear();
    this.bigSnapshots.clear();
    const reason = reloaded ? 'this node loaded its replica again' : 'the hub rolled back changes that could not be stored';
    // Whoever follows everything is told once to ask for everything again (one subscribeAll), not once per document.
    const resync = (doc: DocKey) => this.nsp.to(room(doc)).except(ALL).emit('resync', { doc, reason });
    for (const doc of left) {
      const stream = this.docs.get(doc);
      // Changes of the replica it no longer holds: nobody is to get them.
      if (stream) stream.pending = [];
      this.forget(doc);
      resync(doc);
    }
    for (const doc of docKeys(this.hub.state)) {
      if (!this.docs.has(doc)) this.stream(doc, versionOf(this.hub.state, doc));
    }
    for (const [doc, stream] of this.docs) {
      if (isViewName(doc)) continue;
      const current = versionOf(this.hub.state, doc);
      for (const cut of stream.cuts) if (cut > current) stream.cuts.delete(cut);
      if (current !== stream.committed) {
        // A jump (a replica loaded again): no history leads to it, so nobody resumes by patches.
        Object.assign(stream, { committed: current, sent: current, pending: [], recent: [], dropped: 0, keptBytes: 0, droppedBytes: 0 });
        stream.cuts.clear();
      }
      resync(doc);
    }
    this.nsp.to(ALL).emit('resync', { doc: '*', reason });
    this.derived?.onRollback(new Set(left), reason);
  }

  /**
   * Whether a version of `doc` (a document or a view) held in `epoch` may be resumed: one of this
   * epoch or of the clean stop this run started from, and not of a workflow deleted from the
   * archive since (its id may have been taken again).
   */
  resumable(doc: DocKey, epoch: string | undefined): boolean {
    if (epoch === undefined) return false;
    const slash = doc.indexOf('/');
    const workflowId = slash < 0 ? doc : doc.slice(0, slash);
    if (this.deletedInEpoch.has(workflowId)) return false;
    return epoch === this.epoch || (epoch === this.previous?.epoch && !this.previous.deleted.has(workflowId));
  }

  /** Where monitors are, for a clean stop to keep (Store.close). */
  resumePoint(): ResumePoint {
    return { epoch: this.epoch, deleted: [...this.deletedInEpoch] };
  }

  /** A fresh epoch: nothing held before it resumes. */
  private newEpoch(): void {
    this.epoch = newEpoch();
    this.previous = undefined;
    this.deletedInEpoch.clear();
  }

  /**
   * Archived workflows were deleted: a new workflow may take one's id, with versions from 1 again,
   * so no version held of a deleted one resumes anything (resumable), and whoever follows it is told
   * to resync (answered NOT_FOUND, or the new workflow's snapshot) and leaves its room. Past
   * DELETED_PER_EPOCH such ids, a new epoch instead: the list a clean stop keeps stays small.
   */
  deleted(workflowIds: readonly string[]): void {
    for (const id of workflowIds) this.deletedInEpoch.add(id);
    if (this.deletedInEpoch.size > DELETED_PER_EPOCH) this.newEpoch();
    const reason = 'the workflow was deleted from the archive';
    this.derived?.deleted(new Set(workflowIds), reason);
    for (const doc of workflowIds) {
      // Said so: every follower of everything gets it, and one that never held the workflow need not ask for it.
      this.nsp.to([room(doc), ALL]).emit('resync', { doc, reason, deleted: true });
      for (const id of [...(this.nsp.adapter.rooms.get(room(doc)) ?? [])]) {
        const socket = this.nsp.sockets.get(id);
        // A scoped follower of everything keeps its scope's rooms: a workflow created later with that id is its to see, as `ALL` sees it.
        if (socket?.data.followsAll === true && (socket.data.scope as readonly string[] | undefined)?.includes(doc)) continue;
        void socket?.leave(room(doc));
      }
    }
  }

  /** Stops the broadcast timer. */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.snapshotsExpiry) clearTimeout(this.snapshotsExpiry);
    this.snapshots.clear();
    this.bigSnapshots.clear();
  }
}

/** How many workflows deleted from the archive an epoch remembers (about 0.3–1 MB in the manifest) before a new one starts. */
const DELETED_PER_EPOCH = 10_000;

/** A fresh epoch: what a subscriber must hold, with its version, to resume by patches. */
function newEpoch(): string {
  return randomBytes(9).toString('base64url');
}
