import { randomBytes } from 'node:crypto';
import { Mutex } from 'async-mutex';
import { HubError } from '../shared/errors.ts';
import { appendAll } from '../shared/append-all.ts';
import { applyCommand, type Command, type CommandReply, type CommandType } from './domain/machinery/commands.ts';
import type { DomainSettings } from './domain/machinery/context.ts';
import type { Effect } from './domain/machinery/effects.ts';
import { AGENTS_DOC, docKeys, emptyState, smallerThan, stateFromDocs, storedDocs, versionOf, type DocKey, type HubState, type StoredDoc } from './domain/machinery/state.ts';
import { copyJson, Transaction } from './domain/machinery/transaction.ts';
import { encodeRecords, type DocChange, type JournalRecord } from './store/records.ts';
import type { CurrentDocs, PinnedDocs, ResumePoint, Store } from './store/store.ts';
import { pinnedSnapshotJson } from './pinned-json.ts';
import { replayChanges } from './domain/machinery/replay.ts';

/** What a committed batch tells listeners: its records (patches per document) and effects. */
export interface CommittedBatch {
  records: JournalRecord[];
  effects: Effect[];
}

/** What a rollback, or a follower's reload of its replica, leaves rollback listeners to catch up with. */
export interface RolledBack {
  /** Documents in memory before and not now (a creation undone, a workflow the reloaded replica lacks): forgotten as an evicted one is. */
  left: readonly DocKey[];
  /** The replica was loaded again: a version seen before may now name other contents. */
  reloaded: boolean;
}

/** `T` and everything reachable from it, read-only: maps, sets, arrays and objects alike. */
type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends ReadonlyMap<infer K, infer V>
    ? ReadonlyMap<K, DeepReadonly<V>>
    : T extends ReadonlySet<infer V>
      ? ReadonlySet<DeepReadonly<V>>
      : T extends object
        ? { readonly [P in keyof T]: DeepReadonly<T[P]> }
        : T;

/**
 * The hub's state as it is shown outside its writer: the documents (workflows, the agent pool)
 * and their versions, live and read-only. The scheduler's index stays the writer's own.
 */
export type ReadonlyHubState = DeepReadonly<Pick<HubState, 'workflows' | 'agents' | 'versions'>>;

/** A batch is written before the end of the turn once it holds this many commands, or is this old (ms). */
const EARLY_WRITE_COMMANDS = 32;
const EARLY_WRITE_MS = 2;

/**
 * Up to this much JSON (about 1,300 work orders), a due snapshot is serialised from memory on the
 * event loop (~15 ms at the bound on an idle core, sizing included) instead of being rebuilt by
 * replaying the journal in the worker: replaying 32 MB of progress updates into a small state
 * costs about a second of CPU, which on 2 cores stalled the hub's loop however it was paced.
 */
const SNAPSHOT_FROM_MEMORY_BYTES = 1_000_000;

/** Records written together (a turn's, or part of a busy one); dispatchers wait for `committed`. */
class Batch {
  /** When the first command joined (performance.now()). */
  readonly openedAt = performance.now();
  readonly records: JournalRecord[] = [];
  readonly transactions: Transaction<Effect>[] = [];
  readonly committed: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;
  constructor() {
    this.committed = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A batch may fail with nobody awaiting it yet; the dispatchers see the rejection themselves.
    this.committed.catch(() => undefined);
  }
}

export interface StateWriterOptions {
  store: Store;
  settings: DomainSettings;
  /** The wall clock; tests may pass their own, which then times the in-memory timers too. */
  now?: () => number;
  onError?: (error: Error, context: string) => void;
  /** Told that journal writes succeed again after `failed` failed in a row. */
  onWritesRecovered?: (failed: number) => void;
  /** Told how long each journal write took (ms) and how many records it held. */
  onJournalWrite?: (ms: number, records: number) => void;
  /**
   * Start as a follower (a replica of a cluster's leader): no command is taken and nothing is
   * recovered; committed records from the leader's journal come through `applyCommitted`.
   */
  follower?: boolean;
}

/** Whether this writer takes commands (`leader`), or replays another's (`follower`). */
export type WriterRole = 'leader' | 'follower';

/**
 * The hub's single writer. Holds the authoritative state and its versions; every change is a
 * command run by `dispatch` under the mutex, journaled (one write per turn of the event loop, more
 * in a busy one) and only then acknowledged and announced to listeners. The server's own readers
 * (transports, HTTP routes, reports) use `state` directly, without the mutex; an embedding program
 * gets it read-only, as `RunningHub.state`.
 */
export class StateWriter {
  state: HubState;
  private readonly mutex = new Mutex();
  private readonly store: Store;
  private readonly settings: DomainSettings;
  private readonly clock: () => number;
  /** What the sweep's timers run on (Environment.monotonicNow). */
  private readonly monotonicClock: () => number;
  private readonly onError: (error: Error, context: string) => void;
  private readonly onWritesRecovered: (failed: number) => void;
  /** Journal writes failed in a row, and when the last of them was reported (performance.now()). */
  private failedWrites = 0;
  private failureReportedAt = 0;
  private readonly onJournalWrite: (ms: number, records: number) => void;
  private readonly listeners: Array<(batch: CommittedBatch) => void> = [];
  private readonly applyListeners: Array<(record: JournalRecord) => void> = [];
  private readonly rollbackListeners: Array<(rolledBack: RolledBack) => void> = [];
  private current: Batch | undefined;
  /** The newest batch applied to memory and not written yet, if any: what every answer so far may rest on. */
  private unstored: Batch | undefined;
  /** The write loop, while it runs. */
  private flushing: Promise<void> | undefined;
  /** Whether a write is scheduled for the end of this turn of the event loop. */
  private scheduled = false;
  private seq = 0;
  private closed = false;
  /**
   * Where the run that stopped cleanly into the state loaded left its monitors (see Recovered.resume),
   * for the patch stream to go on from; cleared by a rollback, after which versions of it may not be resumed.
   */
  resumed: ResumePoint | undefined;
  private role: WriterRole = 'leader';
  /** newId bound once: a closure made per command costs, under tsx, a defineProperty for its name too. */
  private readonly idSource = (prefix: string) => this.newId(prefix);
  private randomPool = Buffer.alloc(0);
  private randomOffset = 0;
  /** Documents changed since the last pinned snapshot took them: the next one serialises these and may copy the rest. */
  private readonly changedDocs = new Set<DocKey>();

  private constructor(options: StateWriterOptions) {
    this.store = options.store;
    this.settings = options.settings;
    // Read at each call, not bound once: a step of the system clock (or a test's) reaches every reader alike.
    this.clock = options.now ?? (() => Date.now());
    // A test's clock stands for time passing; the system's may step, and performance.now() does not.
    this.monotonicClock = options.now ?? (() => performance.now());
    this.onError = options.onError ?? (() => undefined);
    this.onWritesRecovered = options.onWritesRecovered ?? (() => undefined);
    this.onJournalWrite = options.onJournalWrite ?? (() => undefined);
    this.state = emptyState(options.settings.agingMs);
  }

  /** Opens the store and loads the state it holds. */
  static async open(options: StateWriterOptions): Promise<StateWriter> {
    const writer = new StateWriter(options);
    const recovered = await options.store.open();
    writer.state = stateFromDocs(recovered.docs, writer.now(), options.settings.agingMs, writer.monotonicClock());
    writer.state.archived = options.store.archive;
    // Pinned snapshots serialise only the items written since the one before, which the state notes.
    if (options.store.startPinnedSnapshot) writer.state.changed.track();
    writer.seq = recovered.seq;
    writer.resumed = recovered.resume;
    for (const key of recovered.changedSinceSnapshot ?? []) writer.changedDocs.add(key);
    if (options.follower) writer.role = 'follower';
    else await writer.dispatch({ type: 'hub.recover', input: {}, actor: { role: 'system', name: 'recovery' } });
    return writer;
  }

  /** The sequence number of the last record applied (and, on a leader, being written). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Whether this writer takes commands or follows a leader's journal. */
  get currentRole(): WriterRole {
    return this.role;
  }

  /**
   * On a follower: applies records the leader committed, in order, and tells the commit listeners,
   * as the leader's own commits would. A record out of sequence, or one that does not fit the
   * state, throws: the replica must then be loaded again.
   */
  applyCommitted(records: readonly JournalRecord[]): void {
    if (this.role !== 'follower') throw new Error('only a follower applies committed records');
    if (records.length === 0) return;
    for (const record of records) {
      if (record.seq !== this.seq + 1) throw new Error(`journal record ${record.seq} does not follow ${this.seq}`);
      replayChanges(this.state, record.changes);
      this.seq = record.seq;
    }
    const batch = { records: [...records], effects: [] };
    for (const listener of this.listeners) this.notify(() => listener(batch), 'commit listener');
  }

  /**
   * On a follower: replaces the state with documents loaded again from the store at record `seq`
   * (its journal had moved past what this node could follow). Readers holding the old state start
   * again, and the rollback listeners resync their subscribers.
   */
  replaceState(docs: Map<DocKey, StoredDoc>, seq: number): void {
    if (this.role !== 'follower') throw new Error('only a follower replaces its state');
    this.state.pins.abortAll('this node loaded its replica again');
    const before = docKeys(this.state);
    const archived = this.state.archived;
    this.state = stateFromDocs(docs, this.now(), this.settings.agingMs, this.monotonicClock());
    this.state.archived = archived;
    this.seq = seq;
    const rolledBack = { left: before.filter((key) => !holds(this.state, key)), reloaded: true };
    for (const listener of this.rollbackListeners) this.notify(() => listener(rolledBack), 'rollback listener');
  }

  /**
   * Makes a follower the leader, once it has applied every committed record: the scheduler's index
   * is built from the documents (leases of running attempts start again from now) and the hub
   * recovers as after a restart, withdrawing the offers the last leader left unanswered.
   */
  async promote(): Promise<void> {
    if (this.role === 'leader') return;
    // Presence belongs to the node that saw the sockets; agents register again with this one.
    this.state.work.connected.clear();
    this.state.work.disconnected.clear();
    // Leases too, renewed on the node that led: those set when this node loaded its replica, or led before, ran out.
    this.state.work.leases.clear();
    this.rebuildIndex();
    this.role = 'leader';
    await this.dispatch({ type: 'hub.recover', input: {}, actor: { role: 'system', name: 'recovery' } });
  }

  /**
   * Makes the leader a follower (it lost its lease): commands are refused from now on. Batches
   * already applied are still written, or rolled back when the store refuses them (fenced); wait
   * for `settle()` before applying another leader's records.
   */
  demote(): void {
    this.role = 'follower';
  }

  /** The hub's clock. */
  now(): number {
    return this.clock();
  }

  /** A new unique id with a readable prefix, e.g. `wf_Xy3…`: 9 random bytes, base64url. */
  newId(prefix: string): string {
    // One call to the system's random source per 455 ids, not one per id (as crypto.randomUUID pools).
    if (this.randomOffset + 9 > this.randomPool.length) {
      this.randomPool = randomBytes(4095);
      this.randomOffset = 0;
    }
    const id = `${prefix}_${this.randomPool.toString('base64url', this.randomOffset, this.randomOffset + 9)}`;
    this.randomOffset += 9;
    return id;
  }

  /** Calls `listener` after every committed batch, in commit order. */
  onCommit(listener: (batch: CommittedBatch) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const index = this.listeners.indexOf(listener);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  /**
   * Calls `listener` with each record as its command is applied, before it is stored: for readers
   * of the state as it is now (views), which may show changes still on their way to disk. A
   * follower's records come through `onCommit` only.
   */
  onApply(listener: (record: JournalRecord) => void): void {
    this.applyListeners.push(listener);
  }

  /** Calls `listener` after uncommitted changes were rolled back (a journal write failed), or a follower loaded its replica again. */
  onRollback(listener: (rolledBack: RolledBack) => void): void {
    this.rollbackListeners.push(listener);
  }

  /**
   * Runs a command: applies it under the mutex, waits until its journal record is written,
   * and returns the reply. A command that fails changes nothing.
   */
  async dispatch<K extends CommandType>(command: Command<K>): Promise<CommandReply<K>> {
    // apply() is synchronous, so run-to-completion already makes it exclusive. The mutex is waited
    // for only while someone holds it (close(), and the commands queued behind it, in arrival
    // order); otherwise taking it would only cost a few promise hops per command.
    let applied: { reply: CommandReply<K>; batch: Batch | undefined };
    try {
      applied = this.mutex.isLocked() ? await this.mutex.runExclusive(() => this.apply(command)) : this.apply(command);
    } catch (error) {
      // A refusal may rest on changes not stored yet (a create refused as a duplicate of one being
      // written): it stands once they are, and is UNAVAILABLE if they are rolled back instead.
      await this.whenStored();
      throw error;
    }
    // A command that changed nothing read the state too: its answer waits for what it read.
    // Awaited here, not through whenStored(): this is every command's path, and a call costs a promise.
    const batch = applied.batch ?? this.unstored;
    if (batch) {
      try {
        await batch.committed;
      } catch (error) {
        throw notStored(error);
      }
    }
    return applied.reply;
  }

  /**
   * Waits until every change applied so far is stored; UNAVAILABLE when they were rolled back. A
   * refusal read from `state` outside dispatch (a transport's check before it) waits for this too.
   */
  async whenStored(): Promise<void> {
    try {
      await this.unstored?.committed;
    } catch (error) {
      throw notStored(error);
    }
  }

  /** Waits until everything applied so far is on disk. */
  async settle(): Promise<void> {
    while (this.flushing || this.scheduled) await (this.flushing ?? new Promise((resolve) => setImmediate(resolve)));
  }

  /**
   * Stops accepting commands, writes what is pending and closes the store. `resume`: the patch
   * stream's, asked for once every write is settled (a rollback meanwhile changes it), for the store to keep.
   */
  async close(resume?: () => ResumePoint | undefined): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.runExclusive(() => undefined);
    await this.settle();
    // Nobody is served any more: serialising every document at once beats replaying the journal, however big.
    await this.store.close({ seq: this.seq, docs: storedDocs(this.state) }, resume?.());
  }

  private apply<K extends CommandType>(command: Command<K>): { reply: CommandReply<K>; batch: Batch | undefined } {
    if (this.closed) throw new HubError('UNAVAILABLE', 'the hub is shutting down');
    if (this.role !== 'leader') throw new HubError('UNAVAILABLE', 'this node is a follower: changes go to the leader');
    const tx = new Transaction<Effect>(this.state);
    const now = this.clock();
    let reply: CommandReply<K>;
    try {
      // A copy: the reply is sent after the journal write, by when later commands may have changed the state it shows.
      reply = copyJson(applyCommand({ state: this.state, tx, ctx: { now, monotonicNow: this.monotonicClock(), newId: this.idSource, settings: this.settings } }, command));
    } catch (error) {
      const wrote = !tx.empty;
      tx.rollback();
      // A pin that let go of a document or field this command replaced would read the restored one as it changes on: readers start again.
      if (wrote && this.state.pins.size > 0) this.state.pins.abortAll('a command that failed was rolled back');
      // Domain functions validate before they change anything; anything else may have touched the index.
      if (!(error instanceof HubError)) this.rebuildIndex();
      throw error;
    }
    if (tx.empty && tx.effects.length === 0) return { reply, batch: undefined };
    // Its offers leave once its batch is stored: until then the sweep does not judge them (WorkIndex.unsent).
    for (const effect of tx.effects) if (effect.type === 'offer') this.state.work.unsent.add(effect.assignment.attemptToken);
    if (!this.current) this.current = this.unstored = new Batch();
    const batch = this.current;
    if (!tx.empty) {
      for (const doc of tx.changes.keys()) this.changedDocs.add(doc);
      const changes = [...tx.changes].map(([doc, ops]): DocChange => (tx.mayCompact(doc) ? { doc, v: tx.version(doc), ops } : { doc, v: tx.version(doc), ops, plain: true }));
      const record = { seq: ++this.seq, at: now, changes };
      batch.records.push(record);
      for (const listener of this.applyListeners) this.notify(() => listener(record), 'apply listener');
    }
    batch.transactions.push(tx);
    // Written at the end of this turn of the event loop, or at once when the batch is already big
    // or old: a busy turn (hundreds of requests read from as many sockets) would otherwise hold
    // the acks of its first requests until its last one was handled.
    if (batch.transactions.length >= EARLY_WRITE_COMMANDS || performance.now() - batch.openedAt >= EARLY_WRITE_MS) this.startWriting();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.startWriting();
      });
    }
    return { reply, batch };
  }

  /** Starts the write loop, unless it runs already (it takes the current batch when done with its own). */
  private startWriting(): void {
    this.flushing ??= this.flush();
  }

  /** Writes batches one at a time until none is pending; a batch's records share one write. */
  private async flush(): Promise<void> {
    // Never finishes synchronously: `flushing` is assigned before the loop can end and clear it.
    await undefined;
    try {
      while (this.current) {
        const batch = this.current;
        this.current = undefined;
        // Memory is now what the journal holds once this batch is written: the moment to pin a due snapshot's documents.
        const pinned = this.pinForSnapshot();
        const started = performance.now();
        try {
          if (batch.records.length > 0) await this.store.append(encodeRecords(batch.records, this.store.marksBatches === true), batch.records[0]!.seq);
        } catch (error) {
          if (pinned) {
            for (const part of pinned.docs) part.json?.release();
            pinned.failed();
          }
          this.rollBack(batch, error as Error);
          continue;
        }
        if (batch.records.length > 0) this.notify(() => this.onJournalWrite(performance.now() - started, batch.records.length), 'journal write observer');
        batch.resolve();
        if (this.unstored === batch) this.unstored = undefined;
        if (this.failedWrites > 0) {
          this.notify(() => this.onWritesRecovered(this.failedWrites), 'journal write observer');
          this.failedWrites = 0;
        }
        const effects: Effect[] = [];
        for (const tx of batch.transactions) appendAll(effects, tx.effects);
        // Its offers leave now, pushed or in replies: their accept windows start now.
        const sentAt = this.monotonicClock();
        for (const effect of effects) if (effect.type === 'offer') this.state.work.offerSent(effect.assignment.attemptToken, effect.assignment.acceptMs, sentAt);
        for (const listener of this.listeners) this.notify(() => listener({ records: batch.records, effects }), 'commit listener');
        // A snapshot that fell due with this write is pinned now if nothing else was applied meanwhile, else with the next batch.
        const due = pinned ?? (this.current ? undefined : this.pinForSnapshot());
        if (due) this.notify(() => this.store.startPinnedSnapshot!(due), 'snapshot');
        else if (!this.store.startPinnedSnapshot && this.store.snapshotDue()) this.notify(() => this.store.startSnapshot(this.currentDocs()), 'snapshot');
      }
    } finally {
      // Whatever happens, the next change starts a new flush instead of waiting on this one forever.
      this.flushing = undefined;
    }
  }

  /**
   * When a snapshot is due and the store takes pinned ones: every document, those changed since
   * the snapshot on disk pinned at their version (their JSON is produced a slice at a time while
   * the hub goes on, with the items that did not change copied from the snapshot on disk), the
   * others left for the store to copy.
   */
  private pinForSnapshot(): PinnedDocs | undefined {
    if (!this.store.startPinnedSnapshot || !this.store.snapshotDue()) return undefined;
    const serialised: DocKey[] = [];
    const changes = this.state.changed.take();
    const docs = docKeys(this.state).map((key) => {
      const v = versionOf(this.state, key);
      if (!this.changedDocs.has(key) && this.store.holdsDoc?.(key, v)) return { key, v, json: undefined };
      serialised.push(key);
      const onDisk = changes.unknown ? undefined : this.store.itemsOnDisk?.(key);
      return { key, v, json: pinnedSnapshotJson(this.state, key, onDisk && { ...onDisk, changes: changes.docs.get(key) }) };
    });
    this.changedDocs.clear();
    return {
      seq: this.seq,
      docs,
      // What changed since the snapshot on disk is no longer known item by item: they are serialised whole next time.
      failed: () =>
        serialised.forEach((key) => {
          this.changedDocs.add(key);
          this.state.changed.markWhole(key);
        }),
    };
  }

  /**
   * Every document as the journal holds it, for a snapshot from memory: only when no applied
   * command waits to be written (memory is then exactly what is on disk) and the documents are
   * small enough to serialise on the event loop.
   */
  private currentDocs(): CurrentDocs | undefined {
    if (this.current) return undefined;
    return smallerThan(this.state, SNAPSHOT_FROM_MEMORY_BYTES) ? { seq: this.seq, docs: storedDocs(this.state) } : undefined;
  }

  /** Runs an observer; what it throws is reported, never taken for a failed write. */
  private notify(observer: () => void, context: string): void {
    try {
      observer();
    } catch (error) {
      this.onError(error as Error, context);
    }
  }

  /** Rebuilds the scheduler's and the inventory's indexes from the documents (after a rollback). */
  private rebuildIndex(): void {
    this.state.work.rebuild(this.state.workflows.values(), this.state.agents, this.clock(), this.monotonicClock());
    this.state.inventory.rebuild(this.state.workflows.values());
  }

  /**
   * Undoes a batch whose write failed, and every change applied after it, newest first: memory
   * returns to what the disk holds. This runs synchronously, so no command interleaves with it.
   */
  private rollBack(failed: Batch, error: Error): void {
    const later = this.current;
    this.current = this.unstored = undefined;
    const touched = new Set<DocKey>();
    for (const batch of later ? [later, failed] : [failed]) {
      for (let i = batch.transactions.length - 1; i >= 0; i--) {
        for (const doc of batch.transactions[i]!.changes.keys()) touched.add(doc);
        batch.transactions[i]!.rollback();
      }
    }
    const first = failed.records[0];
    if (first) this.seq = first.seq - 1;
    this.resumed = undefined;
    // Memory holds only stored changes again: no offer waits to be sent.
    this.state.work.unsent.clear();
    this.rebuildIndex();
    // A reader may hold a version that was never stored: it starts again or fails.
    this.state.pins.abortAll('the hub rolled back changes that could not be stored');
    const rolledBack = { left: [...touched].filter((key) => !holds(this.state, key)), reloaded: false };
    for (const listener of this.rollbackListeners) listener(rolledBack);
    failed.reject(error);
    later?.reject(error);
    this.reportFailedWrite(error);
  }

  /**
   * Reports the first of a run of failed journal writes, then one a minute: on a full disk every
   * change fails, and a line each would bury the log (the run's end is reported too).
   */
  private reportFailedWrite(error: Error): void {
    this.failedWrites++;
    const now = performance.now();
    if (this.failedWrites > 1 && now - this.failureReportedAt < FAILURE_REPORT_MS) return;
    this.failureReportedAt = now;
    this.onError(error, this.failedWrites === 1 ? 'journal write' : `journal write (${this.failedWrites} failed in a row so far)`);
  }
}

/** How often a run of failed journal writes is reported again (ms). */
const FAILURE_REPORT_MS = 60_000;

/** The refusal of a change, or of an answer resting on one, whose write failed and was rolled back. */
function notStored(error: unknown): HubError {
  return new HubError('UNAVAILABLE', `the change could not be stored: ${(error as Error).message}`);
}

/** Whether the document is in memory. */
function holds(state: HubState, key: DocKey): boolean {
  return key === AGENTS_DOC ? state.agents !== undefined : state.workflows.has(key);
}
