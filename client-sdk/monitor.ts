import { applyPatch } from '../shared/patch.ts';
import type { Agent } from '../shared/schemas/agent.ts';
import type { PatchMessage, Subscription } from '../shared/schemas/monitor.ts';
import type { Report, ReportFormat } from '../shared/schemas/report.ts';
import type { WorkflowSummary } from '../shared/schemas/summary.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { Connection, type ConnectOptions, type RequestOptions } from './connection.ts';
import './dispose.ts';
import { Listeners } from './listeners.ts';
import { inlineOrTransfer, withBody } from './transfers.ts';

/** What a monitor's `on` reports: a mirror changed, or a new document appeared. */
type MonitorEvents = {
  change: MirrorChange;
  doc: Mirror;
};

/** The `@agents` document: the agent pool by agent id. */
export type AgentPool = Record<string, Agent>;

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
  private readonly listeners = new Listeners<{ change: MirrorChange }>();

  constructor(readonly doc: string) {}

  /** Calls `listener` after every change; returns a function that stops it. */
  on(event: 'change', listener: (change: MirrorChange) => void): () => void {
    return this.listeners.on(event, listener);
  }

  /**
   * Resolves with the state once `predicate(state, version)` holds, checked now and on every change
   * (no polling); rejects after `timeoutMs` with `what` in the message.
   * @example const done = await sub.until((wf) => wf.workOrderCounts.completed === 3, { what: 'three orders completed' });
   */
  until(predicate: (state: T, version: number) => boolean, options: { timeoutMs?: number; what?: string } = {}): Promise<T> {
    return new Promise((resolve, reject) => {
      const holds = () => this.state !== undefined && predicate(this.state, this.version);
      if (holds()) return resolve(this.state as T);
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`timed out waiting for ${options.what ?? 'the condition'} (mirror of ${this.doc} at version ${this.version})`));
      }, options.timeoutMs ?? 30_000);
      const stop = this.on('change', () => {
        if (!holds()) return;
        stop();
        clearTimeout(timer);
        resolve(this.state as T);
      });
    });
  }

  /** Applies a subscription answer (snapshot or catch-up patches). */
  load(subscription: Subscription): boolean {
    if (subscription.mode === 'snapshot') {
      const from = this.version;
      this.state = subscription.state as T;
      this.version = subscription.version;
      this.listeners.emit('change', { doc: this.doc, from, to: this.version, ops: [], snapshot: true });
      return true;
    }
    return this.apply({ doc: this.doc, from: subscription.from, to: subscription.to, ops: subscription.ops });
  }

  /** Applies a patch message; false when it does not follow on from `version` (a gap). */
  apply(message: PatchMessage): boolean {
    if (message.to <= this.version) return true;
    if (message.from !== this.version) return false;
    this.state = applyPatch(this.state, message.ops);
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
  private followAll = false;
  /** The hub run our versions belong to; after a hub restart the hub answers with snapshots. */
  private epoch: string | undefined;
  private readonly resyncing = new Map<string, PatchMessage[]>();
  private readonly listeners = new Listeners<MonitorEvents>();

  constructor(readonly connection: Connection<'monitor'>) {
    const socket = connection.socket;
    socket.on('patch', (message: PatchMessage) => this.onPatch(message));
    socket.on('resync', (notice: { doc: string }) => void this.resync(notice.doc === '*' ? undefined : notice.doc).catch(() => this.resyncUntilDone()));
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
   * Follows one workflow (or `@agents`, the agent pool): resolves with a mirror holding its state now.
   * @example const sub = await monitor.subscribe(wf.id); sub.on('change', () => render(sub.state.progress));
   */
  subscribe<T = AgentPool>(doc: '@agents', options?: RequestOptions): Promise<Mirror<T>>;
  subscribe<T = Workflow>(doc: string, options?: RequestOptions): Promise<Mirror<T>>;
  async subscribe<T>(doc: string, options?: RequestOptions): Promise<Mirror<T>> {
    // A big snapshot is read in parts; the patches that follow it may arrive meanwhile: held, then replayed.
    const held: PatchMessage[] = [];
    const holding = !this.resyncing.has(doc);
    if (holding) this.resyncing.set(doc, held);
    try {
      const subscription = await this.complete(await this.connection.request('subscribe', { doc }, options), options);
      this.epoch = subscription.epoch;
      const mirror = this.mirror(doc);
      mirror.load(subscription);
      return mirror as Mirror<T>;
    } finally {
      if (holding) {
        this.resyncing.delete(doc);
        for (const message of held) this.onPatch(message);
      }
    }
  }

  /** Follows every document the token may see, including workflows created later. */
  async subscribeAll(): Promise<ReadonlyMap<string, Mirror>> {
    this.followAll = true;
    await this.resync(undefined);
    return this.mirrors;
  }

  /** Stops following a document. */
  async unsubscribe(doc: string, options?: RequestOptions): Promise<void> {
    this.mirrors.delete(doc);
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
    return withBody(this.connection, await this.connection.request('report', { workflowId, format }, options), options);
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

  private mirror(doc: string): Mirror {
    let mirror = this.mirrors.get(doc);
    if (!mirror) {
      mirror = new Mirror(doc);
      mirror.on('change', (change) => this.listeners.emit('change', change));
      this.mirrors.set(doc, mirror);
      this.listeners.emit('doc', mirror);
    }
    return mirror;
  }

  private onPatch(message: PatchMessage): void {
    const waiting = this.resyncing.get(message.doc) ?? this.resyncing.get('*');
    if (waiting) return void waiting.push(message);
    if (!this.mirrors.has(message.doc) && !this.followAll) return;
    if (!this.mirror(message.doc).apply(message)) void this.resync(message.doc).catch(() => this.resyncUntilDone());
  }

  /**
   * Catches up one document (or all of them) from the versions held: missed patches when the hub
   * still has them, a snapshot otherwise. Patches arriving meanwhile are held and replayed.
   */
  private async resync(doc: string | undefined): Promise<void> {
    const key = doc ?? '*';
    if (this.resyncing.has(key)) return;
    this.resyncing.set(key, []);
    try {
      if (doc === undefined) {
        const versions = Object.fromEntries([...this.mirrors].map(([name, m]) => [name, m.version]));
        const epoch = this.epoch === undefined ? {} : { epoch: this.epoch };
        if (this.followAll) {
          for (const subscription of (await this.connection.request('subscribeAll', { versions, ...epoch })).docs) await this.catchUp(subscription);
        } else {
          for (const [name, version] of Object.entries(versions)) await this.catchUp(await this.connection.request('subscribe', { doc: name, version, ...epoch }));
        }
      } else {
        const held = this.mirrors.get(doc);
        const resume = held && this.epoch !== undefined ? { version: held.version, epoch: this.epoch } : {};
        await this.catchUp(await this.connection.request('subscribe', { doc, ...resume }));
      }
    } finally {
      const held = this.resyncing.get(key) ?? [];
      this.resyncing.delete(key);
      for (const message of held) this.onPatch(message);
    }
  }

  private async catchUp(answer: Subscription): Promise<void> {
    const subscription = await this.complete(answer);
    this.epoch = subscription.epoch;
    const mirror = this.mirror(subscription.doc);
    // Patches that do not start at our version cannot be applied: start again from a snapshot.
    if (!mirror.load(subscription)) mirror.load(await this.complete(await this.connection.request('subscribe', { doc: subscription.doc })));
  }

  /** A subscription with its snapshot in place, read from its transfer when it came as one. */
  private async complete(subscription: Subscription, options?: RequestOptions): Promise<Subscription> {
    if (subscription.mode !== 'snapshot' || !subscription.transfer) return subscription;
    const { transfer, ...snapshot } = subscription;
    return { ...snapshot, state: await inlineOrTransfer(this.connection, undefined, transfer, options) };
  }
}

/**
 * Connects a monitor (a monitor or admin token).
 * @example const monitor = await connectMonitor({ url, token }); const sub = await monitor.subscribe(workflowId);
 */
export async function connectMonitor(options: ConnectOptions): Promise<MonitorClient> {
  return new MonitorClient(await Connection.open('monitor', options));
}
