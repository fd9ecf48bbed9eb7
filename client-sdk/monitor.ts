import { HubError } from '../shared/errors.ts';
import { applyPatchAtomic } from '../shared/patch.ts';
import type { Agent } from '../shared/schemas/agent.ts';
import type { PatchMessage, ResyncNotice, Subscription } from '../shared/schemas/monitor.ts';
import type { Report, ReportFormat } from '../shared/schemas/report.ts';
import type { WorkflowSummary } from '../shared/schemas/summary.ts';
import { viewName, type OrdersView, type SummaryView, type ViewSpecInput } from '../shared/schemas/views.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { Connection, type ConnectOptions, type RequestOptions } from './connection.ts';
import './dispose.ts';
import { Listeners } from './listeners.ts';
import { checkedTimeout, timerMs } from './timeouts.ts';
import { inlineOrTransfer, readWhole, withBody } from './transfers.ts';

/** What a monitor's `on` reports: a mirror changed, or a new document appeared. */
type MonitorEvents = {
  change: MirrorChange;
  doc: Mirror;
};

/** The `@agents` document: the agent pool by agent id. */
export type AgentPool = Record<string, Agent>;

/** Options of `subscribe`: a view of the workflow to follow instead of its whole document. */
export interface SubscribeOptions extends RequestOptions {
  /** `{ kind: 'summary' }`, or `{ kind: 'orders', state?, taskType?, limit?, before? }`. */
  view?: ViewSpecInput;
}

/** A view's name holds a `/`, which no document's does. */
const isViewName = (name: string) => name.includes('/');

/** What a mirror reports after each change. */
export interface MirrorChange {
  doc: string;
  from: number;
  to: number;
  /** The operations applied; empty after a fresh snapshot. */
  ops: PatchMessage['ops'];
  snapshot: boolean;
}

/**
 * A live copy of one document. `state` always equals the hub's state at `version`; patches are
 * applied in order, and a gap (a message that does not start at `version`) triggers a resync.
 */
export class Mirror<T = unknown> {
  state: T | undefined;
  version = 0;
  /**
   * The run of the hub `version` was answered in: it resumes with that, never another mirror's,
   * since a version may have shown a change that a later epoch rolled back and gave to another.
   */
  epoch: string | undefined;
  private readonly listeners = new Listeners<{ change: MirrorChange }>();

  constructor(readonly doc: string) {}

  /** Calls `listener` after every change; returns a function that stops it. */
  on(event: 'change', listener: (change: MirrorChange) => void): () => void {
    return this.listeners.on(event, listener);
  }

  /**
   * Resolves with the state once `predicate(state, version)` holds, checked now and on every change
   * (no polling); rejects with what the predicate throws, or after `timeoutMs` (30 s; Infinity: no limit) with `what` in the message.
   * @example const done = await sub.until((wf) => wf.workOrderCounts.completed === 3, { what: 'three orders completed' });
   */
  until(predicate: (state: T, version: number) => boolean, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
    return new Promise((resolve, reject) => {
      const holds = () => this.state !== undefined && predicate(this.state, this.version);
      if (holds()) return resolve(this.state as T);
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`timed out waiting for ${options.what ?? 'the condition'} (mirror of ${this.doc} at version ${this.version})`));
      }, timerMs(checkedTimeout('timeoutMs', options.timeoutMs, 30_000)));
      const stop = this.on('change', () => {
        let held: boolean;
        try {
          held = holds();
        } catch (error) {
          // Rejected with, as when it checks at once: not lost in the listener that runs it.
          stop();
          clearTimeout(timer);
          return reject(error);
        }
        if (!held) return;
        stop();
        clearTimeout(timer);
        resolve(this.state as T);
      });
    });
  }

  /** Applies a subscription answer (snapshot or catch-up patches), and takes its epoch when it applies. */
  load(subscription: Subscription): boolean {
    if (subscription.mode === 'snapshot') {
      const from = this.version;
      this.state = subscription.state as T;
      this.version = subscription.version;
      this.epoch = subscription.epoch;
      this.listeners.emit('change', { doc: this.doc, from, to: this.version, ops: [], snapshot: true });
      return true;
    }
    const applied = this.apply({ doc: this.doc, from: subscription.from, to: subscription.to, ops: subscription.ops });
    if (applied) this.epoch = subscription.epoch;
    return applied;
  }

  /**
   * Applies a patch message; false when it does not follow on from `version` (a gap), or does not
   * apply to `state` (which is then left as it was, for a catch-up to mend).
   */
  apply(message: PatchMessage): boolean {
    if (message.to <= this.version) return true;
    if (message.from !== this.version) return false;
    try {
      this.state = applyPatchAtomic(this.state, message.ops);
    } catch {
      return false;
    }
    this.version = message.to;
    this.listeners.emit('change', { doc: this.doc, from: message.from, to: message.to, ops: message.ops, snapshot: false });
    return true;
  }
}

/**
 * A monitor: follows documents live and asks for summaries. Reconnects on its own and resumes
 * each subscription from the version it holds.
 */
export class MonitorClient {
  private readonly mirrors = new Map<string, Mirror>();
  /** The view each view mirror follows, by the view's name: what to subscribe to again. */
  private readonly views = new Map<string, { workflowId: string; view: ViewSpecInput }>();
  private followAll = false;
  /** Documents unsubscribed from while following everything: their patches and catch-ups are left out until subscribed to again. */
  private readonly leftOut = new Set<string>();
  /** The epoch of the latest answer: subscribeAll takes one, and sends the versions held in it (the others get snapshots). */
  private latestEpoch: string | undefined;
  /** The epoch subscribeAll last answered in: that of a document that arrives by patch. */
  private followAllEpoch: string | undefined;
  private readonly resyncing = new Map<string, PatchMessage[]>();
  /** The catch-up (or first subscribe) running for each name, '*' for all: a second request waits for it, then runs once more. */
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly again = new Map<string, Promise<void>>();
  /** Per name, the subscriptions not answered yet, each marked when an unsubscribe from that name comes meanwhile. */
  private readonly unanswered = new Map<string, Set<{ unsubscribed: boolean }>>();
  private readonly listeners = new Listeners<MonitorEvents>();

  constructor(readonly connection: Connection<'monitor'>) {
    const socket = connection.socket;
    socket.on('patch', (message: PatchMessage) => this.onPatch(message));
    socket.on('resync', (notice: ResyncNotice) => {
      // Following everything, every deleted workflow is told: one neither held nor being subscribed to would cost a subscribe
      // answered NOT_FOUND, per workflow a prune deleted. (A workflow made anew with its id comes as any new one, by patch.)
      if (notice.deleted && !this.mirrors.has(notice.doc) && !this.running.has(notice.doc) && !this.running.has('*')) return;
      void this.resync(notice.doc === '*' ? undefined : notice.doc).catch(() => this.resyncUntilDone());
    });
    // Connected now: every later 'connect' is a reconnect, after which subscriptions resume.
    socket.on('connect', () => void this.resyncUntilDone());
  }

  /** Every mirror this monitor holds, by document. */
  get docs(): ReadonlyMap<string, Mirror> {
    return this.mirrors;
  }

  /** Calls `listener` after any mirror changes; `doc` fires when a new document appears. */
  on<K extends keyof MonitorEvents>(event: K, listener: (payload: MonitorEvents[K]) => void): () => void {
    return this.listeners.on(event, listener);
  }

  /**
   * Follows one workflow (or `@agents`, the agent pool): resolves with a mirror holding its state
   * now. With `view`, the mirror holds that view of the workflow instead (its summary, or a page
   * of its orders), named `<workflowId>/summary` or `<workflowId>/orders?…`, kept live the same way.
   * @example const sub = await monitor.subscribe(wf.id); sub.on('change', () => render(sub.state.progress));
   * @example const failed = await monitor.subscribe(wf.id, { view: { kind: 'orders', state: 'failed', limit: 20 } });
   */
  subscribe<T = AgentPool>(doc: '@agents', options?: RequestOptions): Promise<Mirror<T>>;
  subscribe(workflowId: string, options: SubscribeOptions & { view: { kind: 'summary' } }): Promise<Mirror<SummaryView>>;
  subscribe(workflowId: string, options: SubscribeOptions & { view: { kind: 'orders' } }): Promise<Mirror<OrdersView>>;
  subscribe<T = Workflow>(doc: string, options?: SubscribeOptions): Promise<Mirror<T>>;
  async subscribe<T>(doc: string, options: SubscribeOptions = {}): Promise<Mirror<T>> {
    const { view, ...requestOptions } = options;
    const name = view ? viewName(doc, view) : doc;
    this.leftOut.delete(name);
    // A big snapshot is read in parts; the patches that follow it may arrive meanwhile: held, then replayed.
    const held: PatchMessage[] = [];
    const holding = !this.resyncing.has(name);
    if (holding) this.resyncing.set(name, held);
    const ticket = { unsubscribed: false };
    let unanswered = this.unanswered.get(name);
    if (!unanswered) this.unanswered.set(name, (unanswered = new Set()));
    unanswered.add(ticket);
    const subscribing = (async () => {
      const subscription = await this.complete(await this.connection.request('subscribe', view ? { doc, view } : { doc }, requestOptions), requestOptions);
      this.latestEpoch = subscription.epoch;
      if (ticket.unsubscribed) {
        // Unsubscribed from meanwhile: its value now, in a mirror that is not kept (nor followed again at a reconnect).
        const detached = new Mirror<T>(subscription.doc);
        detached.load(subscription);
        return detached;
      }
      // A copy: the caller may reuse its object (for the next page), and a reconnect subscribes again with this one.
      if (view) this.views.set(subscription.doc, { workflowId: doc, view: { ...view } });
      const mirror = this.mirror(subscription.doc);
      mirror.load(subscription);
      return mirror as Mirror<T>;
    })();
    // A resync notice that comes meanwhile (a rollback while a big snapshot is read) is acted on after it.
    if (holding) this.running.set(name, subscribing);
    try {
      return await subscribing;
    } finally {
      unanswered.delete(ticket);
      if (unanswered.size === 0 && this.unanswered.get(name) === unanswered) this.unanswered.delete(name);
      if (holding) {
        this.running.delete(name);
        this.resyncing.delete(name);
        for (const message of held) this.onPatch(message);
      }
    }
  }

  /** Follows every document the token may see, including workflows created later. */
  async subscribeAll(): Promise<ReadonlyMap<string, Mirror>> {
    this.followAll = true;
    this.leftOut.clear();
    await this.resync(undefined);
    return this.mirrors;
  }

  /** Stops following a document, or a view by its name (its mirror's `doc`). */
  async unsubscribe(doc: string, options?: RequestOptions): Promise<void> {
    // Following everything, patches already on their way (or all of them, from an older hub) must not bring its mirror back.
    if (this.followAll && !isViewName(doc)) this.leftOut.add(doc);
    this.mirrors.delete(doc);
    this.views.delete(doc);
    for (const ticket of this.unanswered.get(doc) ?? []) ticket.unsubscribed = true;
    await this.connection.request('unsubscribe', { doc }, options);
  }

  /** A workflow summary (get_workflow_summary). */
  summary(workflowId: string, options?: RequestOptions): Promise<WorkflowSummary> {
    return this.connection.request('summary', { workflowId }, options);
  }

  /**
   * A report snapshot of a workflow: json, markdown or html, stating its version and content hash.
   * @example const { body } = await monitor.report(workflowId, 'html');
   */
  async report(workflowId: string, format: ReportFormat = 'markdown', options?: RequestOptions): Promise<Report> {
    return readWhole(
      () => this.connection.request('report', { workflowId, format }, options),
      (reply) => withBody(this.connection, reply, options),
    );
  }

  /** Disconnects; resolves once the connection is closed. */
  close(): Promise<void> {
    return this.connection.close();
  }

  /** `await using monitor = await connectMonitor(...)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Resumes every subscription after a reconnect, retrying while the hub is busy or unreachable. */
  private async resyncUntilDone(): Promise<void> {
    for (let delay = 100; this.connection.socket.connected; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.resync(undefined);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** The mirror of `doc`; a new one holds versions of `epoch` (a subscription's answer sets its own). */
  private mirror(doc: string, epoch?: string): Mirror {
    let mirror = this.mirrors.get(doc);
    if (!mirror) {
      mirror = new Mirror(doc);
      mirror.epoch = epoch;
      mirror.on('change', (change) => this.listeners.emit('change', change));
      this.mirrors.set(doc, mirror);
      this.listeners.emit('doc', mirror);
    }
    return mirror;
  }

  private onPatch(message: PatchMessage): void {
    const waiting = this.resyncing.get(message.doc) ?? this.resyncing.get('*');
    if (waiting) return void waiting.push(message);
    // Following everything brings new documents, never views one did not subscribe to.
    if (!this.mirrors.has(message.doc) && (!this.followAll || isViewName(message.doc) || this.leftOut.has(message.doc))) return;
    if (!this.mirror(message.doc, this.followAllEpoch).apply(message)) void this.resync(message.doc).catch(() => this.resyncUntilDone());
  }

  /**
   * Catches up one document (or all of them) from the versions held: missed patches when the hub
   * still has them, a snapshot otherwise. Patches arriving meanwhile are held and replayed. Asked
   * while a catch-up of the same name runs, it runs once more after it: what started it (a
   * rollback, a new connection) may have come after the running one read the hub.
   */
  private resync(doc: string | undefined): Promise<void> {
    // Not followed (a notice that crossed an unsubscribe), nor being subscribed to: nothing to catch up.
    const followed = (name: string) => this.running.has(name) || (isViewName(name) ? this.views.has(name) : this.mirrors.has(name) || (this.followAll && !this.leftOut.has(name)));
    if (doc !== undefined && !followed(doc)) return Promise.resolve();
    const key = doc ?? '*';
    const running = this.running.get(key);
    if (running) {
      let again = this.again.get(key);
      if (!again) {
        again = running.then(
          () => undefined,
          () => undefined,
        ).then(() => {
          this.again.delete(key);
          return this.resync(doc);
        });
        this.again.set(key, again);
      }
      return again;
    }
    this.resyncing.set(key, []);
    const run = this.catchUpNow(doc).finally(() => {
      this.running.delete(key);
      const held = this.resyncing.get(key) ?? [];
      this.resyncing.delete(key);
      for (const message of held) this.onPatch(message);
    });
    this.running.set(key, run);
    return run;
  }

  private async catchUpNow(doc: string | undefined): Promise<void> {
    if (doc !== undefined) {
      await this.catchUpOrForget(doc, this.mirrors.get(doc));
      return;
    }
    // Each mirror resumes from its own version and epoch: a catch-up that failed half way left some in a newer epoch.
    const held = [...this.mirrors];
    // subscribeAll takes documents' versions; views are subscribed to one by one.
    const docs = held.filter(([name]) => !this.views.has(name));
    const views = held.filter(([name]) => this.views.has(name));
    let rest: Array<[string, Mirror | undefined]> = [...docs, ...views];
    // One that fails does not keep the others from catching up; the first failure is told (and everything tried again) after.
    let failed: unknown;
    if (this.followAll) {
      const epoch = this.latestEpoch;
      const versions: Record<string, number> = {};
      for (const [name, mirror] of docs) if (mirror.epoch !== undefined && mirror.epoch === epoch) versions[name] = mirror.version;
      // Left out before the request: one left out meanwhile may be a workflow created since the answer was built.
      const leftBefore = [...this.leftOut];
      const answer = await this.connection.request('subscribeAll', epoch === undefined ? { versions } : { versions, epoch });
      const answeredOn = this.connection.socket.id;
      this.followAllEpoch = answer.docs[0]?.epoch ?? this.followAllEpoch;
      const answered = new Set(answer.docs.map((subscription) => subscription.doc));
      // subscribeAll follows everything again on the hub: what was unsubscribed from is said again, or its patches would come.
      // One the answer lacks left memory (archived, deleted) and sends none: forgotten, as the hub forgets it.
      for (const doc of leftBefore) if (!answered.has(doc)) this.leftOut.delete(doc);
      await Promise.all([...this.leftOut].map((doc) => this.connection.request('unsubscribe', { doc }).catch(() => undefined)));
      const alone: string[] = [];
      for (const subscription of answer.docs) {
        if (this.leftOut.has(subscription.doc)) continue;
        // A transfer is read on the connection it was offered to alone: after a drop each read would wait for the next
        // connection, be NOT_FOUND there and its document asked for alone, one by one. Everything is asked for again at once.
        const transfer = subscription.mode === 'snapshot' && subscription.transfer !== undefined;
        if (transfer && this.connection.socket.id !== answeredOn) return this.catchUpNow(undefined);
        try {
          await this.catchUp(subscription, this.mirrors.get(subscription.doc));
        } catch (error) {
          // The read itself met the drop (DISCONNECTED): thrown after the last snapshot, it failed subscribeAll().
          if (transfer && this.connection.socket.id !== answeredOn) return this.catchUpNow(undefined);
          // Its snapshot's transfer went before we read it (a connection holds 64, the hub 1 GB, each a minute): asking
          // for everything again would lose the same ones, so each is asked for alone.
          if (error instanceof HubError && error.code === 'NOT_FOUND') alone.push(subscription.doc);
          else failed ??= error;
        }
      }
      // Held but not in the answer (archived meanwhile, or gone): each is asked for alone.
      rest = [...alone.map((name): [string, Mirror | undefined] => [name, this.mirrors.get(name)]), ...rest.filter(([name]) => !answered.has(name))];
    }
    for (const [name, mirror] of rest) {
      try {
        await this.catchUpOrForget(name, mirror);
      } catch (error) {
        failed ??= error;
      }
    }
    if (failed !== undefined) throw failed;
  }

  /**
   * Catches up one name from the mirror `held` (none: a snapshot); a document the hub no longer has
   * (pruned, or its creation rolled back), or that the token may no longer see (a reload narrowed
   * its scope), is no longer mirrored. One unsubscribed from meanwhile is not asked for again, and
   * an answer that crossed the unsubscribe is dropped.
   */
  private async catchUpOrForget(name: string, held: Mirror | undefined): Promise<void> {
    if (held && this.mirrors.get(name) !== held) return;
    let answer: Subscription;
    try {
      answer = await this.subscribeTo(name, resumeOf(held));
    } catch (error) {
      // Retrying either would keep the old state for good, asking again every few seconds; so would a
      // view the hub no longer takes (its page's `before` names an order its workflow, made anew, lacks).
      if (!(error instanceof HubError && (error.code === 'NOT_FOUND' || error.code === 'FORBIDDEN' || (error.code === 'VALIDATION' && this.views.has(name))))) throw error;
      if (held && this.mirrors.get(name) !== held) return;
      this.mirrors.delete(name);
      this.views.delete(name);
      return;
    }
    // Outside the try: a transfer that is gone (NOT_FOUND too) says nothing of the document; the catch-up is tried again.
    await this.catchUp(answer, held);
  }

  /** Subscribes again to a document or view by its name, resuming from `resume` when given. */
  private subscribeTo(name: string, resume: { version?: number; epoch?: string }): Promise<Subscription> {
    const followed = this.views.get(name);
    return this.connection.request('subscribe', followed ? { doc: followed.workflowId, view: followed.view, ...resume } : { doc: name, ...resume });
  }

  /** Loads a catch-up's answer into its mirror: `held`'s, unless it was unsubscribed from meanwhile (then nothing). */
  private async catchUp(answer: Subscription, held?: Mirror): Promise<void> {
    const subscription = await this.complete(answer);
    this.latestEpoch = subscription.epoch;
    if (held && this.mirrors.get(subscription.doc) !== held) return;
    // Unsubscribed from while its snapshot was read (a transfer): no mirror the hub no longer patches.
    if (!held && this.leftOut.has(subscription.doc)) return;
    const mirror = this.mirror(subscription.doc);
    // Patches that do not start at our version cannot be applied: start again from a snapshot.
    if (!mirror.load(subscription)) mirror.load(await this.complete(await this.subscribeTo(subscription.doc, {})));
  }

  /** A subscription with its snapshot in place, read from its transfer when it came as one. */
  private async complete(subscription: Subscription, options?: RequestOptions): Promise<Subscription> {
    if (subscription.mode !== 'snapshot' || !subscription.transfer) return subscription;
    const { transfer, ...snapshot } = subscription;
    return { ...snapshot, state: await inlineOrTransfer(this.connection, undefined, transfer, options) };
  }
}

/** What a mirror resumes from: its version with the epoch that version came in, or nothing (a snapshot). */
function resumeOf(mirror: Mirror | undefined): { version?: number; epoch?: string } {
  return mirror?.epoch === undefined ? {} : { version: mirror.version, epoch: mirror.epoch };
}

/**
 * Connects a monitor (a monitor or admin token).
 * @example const monitor = await connectMonitor({ url, token }); const sub = await monitor.subscribe(workflowId);
 */
export async function connectMonitor(options: ConnectOptions): Promise<MonitorClient> {
  return new MonitorClient(await Connection.open('monitor', options));
}
