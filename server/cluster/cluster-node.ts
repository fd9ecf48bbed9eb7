import type { Logger } from '../logger.ts';
import type { StateWriter } from '../state-writer.ts';
import { DamagedJournal, JOURNAL_CHANNEL } from '../store/postgres/pg-journal.ts';
import { archiveDeletedNotice } from '../store/postgres/pg-archive.ts';
import { PgListener } from '../store/postgres/pg-listener.ts';
import type { PostgresStore } from '../store/postgres/postgres-store.ts';
import { LeaseTable, type LeaseHolder } from './lease.ts';
import { MemberTable, type Member } from './members.ts';

export interface ClusterSettings {
  nodeId: string;
  /** The URL clients use to reach this node (given to them when it leads). */
  advertiseUrl: string;
  /** How long a lease lasts without renewal (ms). */
  leaseMs: number;
  /** How often the leader renews its lease (ms). */
  renewMs: number;
  /** How often a follower looks at the lease and the journal without being woken (ms). */
  checkMs: number;
}

/** How often a follower reloads the archive's headers, should the leader's notice of deletions be lost (ms). */
const ARCHIVE_CHECK_MS = 60_000;

/** What `GET /cluster` answers. */
export interface ClusterInfo {
  nodeId: string;
  role: 'leader' | 'follower';
  leader: { nodeId: string; url: string } | null;
  epoch: number;
  version: number;
  /** Every node heard of lately, as of this node's last look (a single hub lists itself). */
  nodes: Member[];
}


/**
 * One node of a cluster: competes for the partition's lease, and either leads (renews the lease;
 * the store appends under its epoch) or follows (applies the leader's journal as it commits,
 * woken by NOTIFY, and takes the lease once it expires). A leader whose append is fenced off or
 * whose lease lapses becomes a follower.
 */
export class ClusterNode {
  private role: 'leader' | 'follower' = 'follower';
  private epoch = 0;
  private leader: { nodeId: string; url: string } | null = null;
  private readonly lease: LeaseTable;
  private readonly members: MemberTable;
  private nodes: Member[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Wakes a follower when the leader commits (the timer still looks, should a notification be lost). */
  private readonly listener: PgListener;
  /** The step (tick or catch-up) in progress; steps never overlap. */
  private running: Promise<void> = Promise.resolve();
  private wakeQueued = false;
  /** Until when (performance.now()) the lease is ours for sure: renewals start the term before they are sent. */
  private heldUntil = 0;
  private closed = false;
  private archiveCheckedAt = performance.now();
  /** The look at the members table in progress, if any. */
  private looking: Promise<void> | undefined;
  /** The damaged journal row this node cannot follow past, while it is there: it never takes the lease then. */
  private damaged: DamagedJournal | undefined;
  /** The epoch this process last took the lease under: a live lease of this node's id under another is not its own. */
  private heldEpoch: number | undefined;
  /** The epoch of the last lease held under this node's id by another node that was warned of. */
  private twinWarned: number | undefined;

  constructor(
    private readonly store: PostgresStore,
    private readonly writer: StateWriter,
    private readonly settings: ClusterSettings,
    /** Called when the node stops leading: close the clients that write, so that they find the leader. */
    private readonly onFollow: () => void,
    private readonly log: Logger,
    /** Told of archived workflows the leader deleted (retention, prune), which no record tells: their ids may be taken again. */
    private readonly onArchiveDeleted: (workflowIds: readonly string[]) => void = () => undefined,
  ) {
    this.lease = new LeaseTable(store.pool, store.partition);
    this.members = new MemberTable(store.pool, store.partition);
    this.listener = new PgListener({ url: store.url, channel: JOURNAL_CHANNEL, retryMs: settings.checkMs, onNotify: (payload) => this.wake(payload === archiveDeletedNotice(store.partition)) });
  }

  /** Starts following the journal and competing for the lease; resolves after the first look at the lease. */
  async start(): Promise<void> {
    await this.listener.start();
    await this.step(() => this.tick());
    this.schedule();
  }

  /** This node's view of the cluster. */
  info(): ClusterInfo {
    return { nodeId: this.settings.nodeId, role: this.role, leader: this.leader, epoch: this.epoch, version: this.writer.lastSeq, nodes: this.nodes };
  }

  /** Whether this node leads now. */
  get leading(): boolean {
    return this.role === 'leader';
  }

  /** The leader clients that write should go to (null when none is known). */
  get leaderAddress(): { nodeId: string; url: string } | null {
    return this.role === 'leader' ? null : this.leader;
  }

  /** The damaged journal row that keeps this node (and so every node) from following and leading, if any. */
  get damage(): DamagedJournal | undefined {
    return this.damaged;
  }

  /** A batch was refused by the fence: another node leads now. */
  fencedOff(): void {
    if (this.role === 'leader') void this.step(() => this.stepDown('another node took the lease'));
  }

  /** Stops competing; a leader gives its lease up so that a follower takes over at once. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    await this.looking;
    await this.listener.close();
    if (this.role === 'leader') {
      // Nothing is taken from now on; what was taken is written before the lease goes.
      this.writer.demote();
      await this.writer.settle();
      this.store.fence = undefined;
      await this.lease.release(this.settings.nodeId, this.epoch).catch(() => undefined);
    }
  }

  /** The next tick: `renewMs` (leading) or `checkMs` after the start of this one, so that a slow renewal does not push the next one back. */
  private schedule(delay = this.interval()): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      const started = performance.now();
      void this.step(() => this.tick()).finally(() => this.schedule(Math.max(0, this.interval() - (performance.now() - started))));
    }, delay);
    this.timer.unref();
  }

  private interval(): number {
    return this.role === 'leader' ? this.settings.renewMs : this.settings.checkMs;
  }

  /** Runs steps one after another; a failed step is logged and the next tick tries again. */
  private step(work: () => Promise<void>): Promise<void> {
    this.running = this.running.then(work).catch((error: Error) => this.log.warn({ err: error }, `cluster: ${error.message}`));
    return this.running;
  }

  private async tick(): Promise<void> {
    if (this.closed) return;
    // Beside the step, never before the renewal: a busy PostgreSQL must not make the lease late.
    if (!this.looking) this.looking = this.lookAround().finally(() => (this.looking = undefined));
    if (this.role === 'leader') return this.renew();
    const holder = await this.lease.holder();
    await this.followHistory(holder);
    await this.catchUp();
    this.leader = holder?.live ? { nodeId: holder.nodeId, url: holder.url } : null;
    // A follower tells the epoch of the lease as it last saw it: the leader's, or the last one's.
    this.epoch = holder?.epoch ?? 0;
    if (holder?.live && !(holder.nodeId === this.settings.nodeId && holder.epoch === this.heldEpoch)) {
      if (holder.nodeId === this.settings.nodeId && holder.url !== this.settings.advertiseUrl && this.twinWarned !== holder.epoch) {
        this.twinWarned = holder.epoch;
        this.log.warn({ nodeId: this.settings.nodeId, url: holder.url }, `cluster: the node at ${holder.url} leads under this node's id ${this.settings.nodeId}: give each node its own nodeId`);
      }
      return;
    }
    // A node that cannot replay the journal must not lead: it would serve, and append after, a state that lacks records.
    if (this.damaged) return;
    const started = performance.now();
    const epoch = await this.lease.tryAcquire(this.settings.nodeId, this.settings.advertiseUrl, this.settings.leaseMs, this.heldEpoch);
    if (epoch === undefined) return;
    this.heldEpoch = epoch;
    // The old leader is fenced off from here on; what it committed before is all in the journal now.
    this.heldUntil = started + this.settings.leaseMs;
    if ((await this.renewingWhile(epoch, () => this.takeOver(epoch))) === 'damaged') await this.lease.release(this.settings.nodeId, epoch);
  }

  /** Catches up under the lease just taken and leads; says when a damaged journal row forbids it. */
  private async takeOver(epoch: number): Promise<'damaged' | undefined> {
    // A truncation made since this node last looked (the lease was free then) deleted records it may
    // hold; none can be made now that it holds the lease. Else it would lead, and append after, them.
    await this.followHistory(await this.lease.holder());
    await this.catchUp();
    if (this.damaged) return 'damaged';
    // Retention and prune delete archived workflows without a record: what the last leader deleted
    // since this node's last look at the whole archive would stay listed here for good otherwise.
    this.tellDeleted(await this.store.archive.refresh());
    this.epoch = epoch;
    await this.store.lead({ owner: this.settings.nodeId, epoch });
    this.role = 'leader';
    this.leader = { nodeId: this.settings.nodeId, url: this.settings.advertiseUrl };
    try {
      await this.writer.promote();
    } catch (error) {
      // Leading starts with its recovery stored (which agents are away, which offers to withdraw):
      // else those agents would never be marked away. The lease is held still: the next tick takes it again.
      await this.stepDown(`its recovery could not be stored: ${(error as Error).message}`);
      return;
    }
    this.log.info({ nodeId: this.settings.nodeId, epoch, version: this.writer.lastSeq }, 'cluster: this node leads');
  }

  /**
   * Runs `work` while renewing the lease under `epoch` every renewMs (one renewal at a time):
   * taking over a large state may outlast a term, and another node taking the lease meanwhile
   * would have the same trouble with it.
   */
  private async renewingWhile<T>(epoch: number, work: () => Promise<T>): Promise<T> {
    let renewal: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (renewal) return;
      const sent = performance.now();
      renewal = this.lease
        .renew(this.settings.nodeId, epoch, this.settings.leaseMs)
        .then(
          (held) => void (held && (this.heldUntil = Math.max(this.heldUntil, sent + this.settings.leaseMs))),
          () => undefined,
        )
        .finally(() => (renewal = undefined));
    }, this.settings.renewMs);
    try {
      return await work();
    } finally {
      clearInterval(timer);
      // One in flight must not extend a lease released after.
      await renewal;
    }
  }

  /** Says who this node is and lists the others; a failure here never stops leading or following. */
  private async lookAround(): Promise<void> {
    try {
      await this.members.beat({ nodeId: this.settings.nodeId, url: this.settings.advertiseUrl, role: this.role, version: this.writer.lastSeq });
      this.nodes = await this.members.list();
    } catch {
      // PostgreSQL is away: the lease and journal steps say so, and the list stays as last seen.
    }
  }

  private async renew(): Promise<void> {
    const started = performance.now();
    let renewed: boolean | 'late';
    let termOver: NodeJS.Timeout | undefined;
    try {
      // A renewal may never answer (PostgreSQL cut off without a reset): it must not outlast the term
      // (by more than a renewal's interval, which one sent after a stall of the event loop is given).
      const late = new Promise<'late'>((resolve) => (termOver = setTimeout(() => resolve('late'), Math.max(this.heldUntil - started, this.settings.renewMs))));
      renewed = await Promise.race([this.lease.renew(this.settings.nodeId, this.epoch, this.settings.leaseMs), late]);
    } catch (error) {
      // PostgreSQL is unreachable: keep leading while the term lasts (writes fail meanwhile), then step down.
      if (performance.now() < this.heldUntil) throw error;
      return this.stepDown(`the lease could not be renewed: ${(error as Error).message}`);
    } finally {
      clearTimeout(termOver);
    }
    if (renewed === 'late') return this.stepDown('the lease could not be renewed within its term: PostgreSQL does not answer');
    if (!renewed) return this.stepDown('another node took the lease');
    this.heldUntil = started + this.settings.leaseMs;
  }

  /** Stops leading: refuse writes, let what is being written finish or fail, then follow. */
  private async stepDown(reason: string): Promise<void> {
    if (this.role !== 'leader') return;
    this.log.warn({ nodeId: this.settings.nodeId, epoch: this.epoch }, `cluster: this node no longer leads (${reason})`);
    this.role = 'follower';
    this.leader = null;
    this.writer.demote();
    this.onFollow();
    await this.writer.settle();
    this.store.fence = undefined;
    // It may have been frozen past its lease while the journal it wrote was cut back.
    await this.followHistory(await this.lease.holder());
    await this.catchUp();
  }

  /**
   * Loads the replica again when the journal was truncated since it was loaded
   * (--truncate-damaged-journal): records this node applied may be gone, and their numbers given
   * to other records, which would otherwise be applied on top of them.
   */
  private async followHistory(holder: LeaseHolder | undefined): Promise<void> {
    const truncations = holder?.truncations ?? 0;
    if (truncations === this.store.truncations) return;
    await this.reload(`the journal was truncated (${truncations} time(s), ${this.store.truncations} as this node loaded it)`);
  }

  /** Loads the replica again from PostgreSQL: its snapshot and the journal after it. */
  private async reload(reason: string): Promise<void> {
    this.log.warn({ nodeId: this.settings.nodeId }, `cluster: the replica is loaded again from PostgreSQL (${reason})`);
    const { docs, seq } = await this.store.load();
    const deleted = await this.store.archive.refresh();
    this.writer.replaceState(docs, seq);
    this.tellDeleted(deleted);
  }

  /** Passes on the archived workflows a refresh found deleted, if any. */
  private tellDeleted(workflowIds: readonly string[]): void {
    if (workflowIds.length > 0) this.onArchiveDeleted(workflowIds);
  }

  /**
   * Applies every record committed after this node's version. A workflow the leader evicted was
   * archived first: the archive learns of it before it leaves memory here, so reads never miss it.
   */
  private async catchUp(): Promise<void> {
    if (this.role === 'leader') return;
    try {
      await this.applyJournal();
    } catch (error) {
      if (!(error instanceof DamagedJournal)) throw error;
      // Said once per row, not at every look: the row stays damaged until someone repairs or truncates it.
      if (this.damaged?.seq !== error.seq) this.log.error({ partition: error.partition, seq: error.seq }, `cluster: ${error.message}`);
      this.damaged = error;
      return;
    }
    if (this.damaged) {
      this.log.info({ partition: this.damaged.partition, seq: this.damaged.seq, version: this.writer.lastSeq }, 'cluster: the journal reads again past the damaged row');
      this.damaged = undefined;
    }
    // Retention and prune delete archived workflows without a record: a follower looks at the whole
    // archive when the leader says it deleted some, and now and then (a notice may be lost).
    if (performance.now() - this.archiveCheckedAt > ARCHIVE_CHECK_MS) {
      this.archiveCheckedAt = performance.now();
      this.tellDeleted(await this.store.archive.refresh());
    }
  }

  /** Applies the committed records after this node's version, loading the replica again when they no longer fit it. */
  private async applyJournal(): Promise<void> {
    for (;;) {
      let read: Awaited<ReturnType<PostgresStore['readFollowing']>>;
      try {
        read = await this.store.readFollowing(this.writer.lastSeq);
      } catch (error) {
        // A snapshot of the damaged row's record, or a later one, holds what it said: load the replica from there.
        if (!(error instanceof DamagedJournal) || (await this.store.newestSnapshotSeq()) < error.seq) throw error;
        await this.reload(`${error.row} is damaged, and a snapshot holds its record`);
        continue;
      }
      const { records, truncations } = read;
      if (records.length === 0) break;
      // Woken by a new leader's records before this node's next look at the lease: a truncation
      // since it loaded may have deleted records it holds, which these would be applied on top of.
      if (truncations !== this.store.truncations) {
        await this.reload(`the journal was truncated (${truncations} time(s), ${this.store.truncations} as this node loaded it)`);
        continue;
      }
      const evicted = records.flatMap((record) => record.changes.filter((change) => change.ops.length === 1 && change.ops[0]!.op === 'remove' && change.ops[0]!.path === '').map((change) => change.doc));
      // An archived workflow never changes: one changed here was deleted from the archive and made anew under its id, though
      // the leader's notice of the deletion may have been lost. Told before the new one is applied, so that no version held of the old one resumes it.
      const remade = records.flatMap((record) => record.changes.filter((change) => !this.writer.state.workflows.has(change.doc) && this.store.archive.has(change.doc)).map((change) => change.doc));
      if (remade.length > 0) this.tellDeleted(await this.store.archive.refresh([...new Set(remade)]));
      // Evicted workflows the leader has deleted from the archive since: told once they have left memory here.
      const deleted = evicted.length > 0 ? await this.store.archive.refresh(evicted) : [];
      try {
        this.writer.applyCommitted(records);
      } catch (error) {
        // Records trimmed away while this node was behind, or a replica that no longer fits: load it again.
        await this.reload((error as Error).message);
      }
      this.tellDeleted(deleted);
    }
  }

  /** Catches up at once; `archiveDeleted`: reads the archive's headers again too (the leader deleted some). */
  private wake(archiveDeleted = false): void {
    if (archiveDeleted) this.archiveCheckedAt = -Infinity;
    if (this.role === 'leader' || this.wakeQueued) return;
    this.wakeQueued = true;
    void this.step(async () => {
      this.wakeQueued = false;
      await this.catchUp();
    });
  }
}
