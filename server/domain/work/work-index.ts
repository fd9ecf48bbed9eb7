import { StableMap } from '../machinery/stable-map.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { AgentIds } from './agent-ids.ts';
import { queueKey } from './assignment.ts';
import { AvailableAgents, type UndoLog } from './free-agents.ts';
import { before, BucketHeads, type Head } from './bucket-heads.ts';
import { CapableAgents, filingFrom, requirementsKey, sameWaiting, takesWork, type Need } from './capable-agents.ts';
import { OfflineAgents } from './offline-agents.ts';
import { OrderLists } from './order-lists.ts';
import { FaultBackoff } from '../machinery/fault-backoff.ts';
import { PriorityQueue } from './priority-queue.ts';
import { TimerQueue, type Timed } from './timer-queue.ts';
import { WorkflowCatalogs } from './workflow-catalogs.ts';

/** A queued work order waiting in its bucket. */
export interface ReadyEntry {
  key: number;
  seq: number;
  workflowId: string;
  workOrderId: string;
  /** orderKey of the order, made once: the scheduler looks its entry up at every turn it meets it. */
  orderKey: string;
  bucket: Bucket;
  /** The agents that declined the order when it was queued (it is not queued while that changes). */
  declinedBy: readonly string[];
}

/**
 * Orders of one workflow with the same task type and requirements: an agent can serve all of
 * them or none, and a workflow at its maxConcurrentAgents closes its buckets to newcomers at once.
 */
export interface Bucket {
  /** Its key in `buckets`. */
  key: string;
  workflowId: string;
  taskType: string;
  requirements: string[];
  queue: PriorityQueue<ReadyEntry>;
  /**
   * How many of its entries stand for a queued order. The others are stale (skipped when they
   * come up); the bucket goes, with them, when its last queued order leaves it.
   */
  current: number;
  /**
   * How many of its current entries each agent declined: while that is all of them, the agent
   * can take none, which the scheduler knows without walking the queue.
   */
  declines: Map<string, number>;
  /** The orders of every workflow that need the same kind of agent: whether one can take them. */
  need: Need<Bucket>;
  /** Where `heads` files it (BucketHeads). */
  filed?: Head | undefined;
}

/** An attempt offered to or running on an agent. */
export interface ActiveAttempt {
  token: string;
  workflowId: string;
  workOrderId: string;
  agentId: string;
  phase: 'offered' | 'running';
  /** Offer deadline while offered, on the monotonic clock (Environment.monotonicNow). */
  offerDeadline: number;
  /**
   * The offer went in a report's reply (`next`): silence past its deadline may be a reply that
   * never reached the agent, not a decline, so it is not held against the agent. Kept by a rebuild
   * of the index, not across a restart, which counts such an offer as pushed.
   */
  carried?: boolean;
  /**
   * Until when the hub holds the attempt open as it reads the files of a report on it (monotonic
   * clock): an ack's timeout before then does not end the offer (the sweep does, if it lapses), nor
   * does the order's overall timeout end the order.
   */
  heldUntil?: number;
}

/** Where an order stands in the queue: when it was first queued (monotonic clock), and its arrival number. */
interface Place {
  queuedAt: number;
  seq: number;
}

/** A retry timer, with the order's `notBefore` (wall clock) it was set for. */
interface Backoff extends Timed {
  notBefore: number;
}

/** An overall-timeout timer, with the order's `firstQueuedAt` it runs from: an order of a workflow that took a deleted one's id is another order. */
interface Deadline extends Timed {
  firstQueuedAt: number;
}

/** A timer that forgets the declines of an order marked all_declined, with the marker's `retryAt` (wall clock) it was set for. */
interface DeclinesExpiry extends Timed {
  retryAt: number;
}

const NOBODY: readonly string[] = Object.freeze([]);

/** The key of a work order across workflows. */
export const orderKey = (workflowId: string, workOrderId: string) => `${workflowId}\u0000${workOrderId}`;

function bucketKey(order: Pick<WorkOrder, 'workflowId' | 'taskType' | 'requirements'>): string {
  // Most orders have no requirement or one: no sorted copy for them (start-up files every queued order).
  return `${order.workflowId}\u0000${order.taskType}\u0000${requirementsKey(order.requirements)}`;
}

/**
 * What the scheduler needs to act without walking the state: ready queues, retry and timeout
 * timers, the attempts in flight, agents' presence and leases. Presence and leases are runtime
 * facts (not in any document); everything else is derived from the documents and rebuilt from
 * them at start-up and after a rollback.
 */
export class WorkIndex {
  /** Agents whose socket is gone, and since when (monotonic clock); absent means connected or never seen. */
  readonly disconnected = new Map<string, number>();
  /** Agents with a live socket. */
  readonly connected = new Set<string>();
  /**
   * Agents that may have a free slot, under each task type they declared (`*` for any), sorted for
   * placement (free-agents.ts): every agent in `freed` joins when the scheduler runs, and the
   * scheduler drops one it finds connected-and-free no more, or no longer of that type. A superset
   * of the agents that can take work, so placing an order looks at those of its task type, not at
   * every connected agent.
   */
  readonly available = new AvailableAgents();
  /**
   * Offers applied whose batch is not stored yet, so not sent (pushed, or in a report's reply):
   * the sweep does not judge their silence. Kept by a rebuild, as leases are.
   */
  readonly unsent = new Set<string>();
  /** Lease expiry of running attempts (monotonic clock), by token. */
  readonly leases = new Map<string, number>();

  readonly buckets = new StableMap<string, Bucket>();
  /** The buckets by task type and first entry, for a free agent's choice (scheduler.ts). */
  readonly heads = new BucketHeads<Bucket>();
  /** The buckets of each workflow: one leaving memory drops its own without a walk of every workflow's. */
  private readonly bucketsOf = new StableMap<string, Set<Bucket>>();
  /**
   * The buckets of each paused workflow (workflow.pause), by key. They stay out of `heads`, so no
   * free agent walks them, and out of `buckets` and `bucketsOf`: a live workflow's bucket that
   * empties and fills again leaves a hole in its Map each time, and V8 walks those holes until the
   * Map is rehashed, so a lookup in a Map of thousands of paused workflows' buckets cost ~15 µs.
   * An order a paused workflow queues is not placed (nor counted fresh): pausing costs others nothing.
   */
  private readonly pausedBuckets = new Map<string, Map<string, Bucket>>();
  /** The valid queue entry of each queued order; older entries for it are skipped. */
  readonly queued = new Map<string, ReadyEntry>();
  /** When each queued order last became ready to offer (for the assignment latency metric). */
  readonly readySince = new Map<string, number>();
  /** When each workflow that was paused last resumed: its orders were not ready to offer before. */
  private readonly resumedAt = new Map<string, number>();
  /** Retry backoffs, overall timeouts, and the forgetting of all_declined orders' declines (declinedRetryMs): an order that ends takes its own out (TimerQueue). */
  readonly delayed = new TimerQueue<Backoff>();
  readonly deadlines = new TimerQueue<Deadline>();
  readonly declineExpiries = new TimerQueue<DeclinesExpiry>();
  /** Offline agents by when they went offline, for forgetting them (rebuilt from the pool). */
  readonly offline = new OfflineAgents();
  readonly active = new Map<string, ActiveAttempt>();
  readonly byAgent = new StableMap<string, Set<string>>();
  /** Per workflow, how many attempts each agent holds there. */
  readonly workflowAgents = new StableMap<string, StableMap<string, number>>();

  /** Agents that got a free slot during the current command, and orders that became ready. */
  readonly freed = new Set<string>();
  readonly fresh: ReadyEntry[] = [];
  /** Each listed workflow's order ids in listing order, for paging. */
  readonly orderLists = new OrderLists();
  /** Workflows' orders sorted per task type and state, for views (built at a workflow's first view, a slice at a time when big). */
  readonly catalogs = new WorkflowCatalogs(this.orderLists);
  /** The pool's agent ids in order, for paging agent.list. */
  readonly agentIds = new AgentIds();
  /** Agents that take work by task type, and whether the queued orders of each kind have one (their `waiting` marker). */
  readonly capable = new CapableAgents<Bucket>();
  private seq = 0;
  /**
   * Each unfinished order's place in the queue, taken when it is first queued, so that a declined,
   * withdrawn or retried order keeps it: its queuedAt on the monotonic clock (recomputed from the
   * wall clock, it would move with a step of that clock, or by the two clocks' rounding, and lose
   * ties) and its arrival number among orders of the same key.
   */
  readonly places = new Map<string, Place>();
  /** The sweep's timers put off after their change failed; kept by a rebuild, which is what follows such a failure. */
  readonly sweepFaults = new FaultBackoff();

  constructor(private readonly agingMs: number) {}

  /**
   * Puts a queued order in its bucket (or on the retry timer when it has a backoff). It counts as
   * newly ready for the scheduler unless `fresh` is false (a rebuild, which looks at none). The
   * clocks are Environment's: the timer runs what is left of the backoff on the monotonic one.
   * Returns its orderKey (`key`, when the caller has it), for its other timers to share: each copy of the string cost 64 bytes.
   */
  enqueue(order: WorkOrder, now: number, monotonicNow: number, { fresh = true, backoffAt, undo, key: known }: { fresh?: boolean; backoffAt?: number | undefined; undo?: UndoLog; key?: string } = {}): string {
    const keyOfOrder = known ?? orderKey(order.workflowId, order.id);
    if (order.notBefore !== null) {
      // Backing off: the sweep queues it, and clears its notBefore, once that time comes. One whose
      // time came while the hub was down is queued now; the first sweep clears its notBefore.
      // `backoffAt`: the timer this backoff already ran on (a rebuild), which a wall-clock step does not move.
      const at = backoffAt ?? monotonicNow + (order.notBefore - now);
      this.delayed.push({ at, notBefore: order.notBefore, workflowId: order.workflowId, workOrderId: order.id, key: keyOfOrder, slot: -1 }, undo);
      if (at > monotonicNow) return keyOfOrder;
    }
    this.leaveBucket(keyOfOrder);
    const key = bucketKey(order);
    const held = this.pausedBuckets.get(order.workflowId);
    let bucket = (held ?? this.buckets).get(key);
    if (!bucket) {
      const need = this.capable.needOf(order.taskType, order.requirements);
      bucket = { key, workflowId: order.workflowId, taskType: order.taskType, requirements: order.requirements, queue: new PriorityQueue<ReadyEntry>(before), current: 0, declines: new Map(), need };
      need.buckets.add(bucket);
      if (held) held.set(key, bucket);
      else {
        this.buckets.set(key, bucket);
        let ofWorkflow = this.bucketsOf.get(order.workflowId);
        if (!ofWorkflow) this.bucketsOf.set(order.workflowId, (ofWorkflow = new Set()));
        ofWorkflow.add(bucket);
      }
    }
    const declinedBy = order.declinedBy.length === 0 ? NOBODY : [...order.declinedBy];
    const place = this.placeOf(keyOfOrder, order, now, monotonicNow);
    const entry = { key: queueKey(order.priority, place.queuedAt, this.agingMs), seq: place.seq, workflowId: order.workflowId, workOrderId: order.id, orderKey: keyOfOrder, bucket, declinedBy };
    bucket.queue.push(entry);
    if (!held) this.heads.refile(bucket);
    bucket.current++;
    for (const agentId of declinedBy) bucket.declines.set(agentId, (bucket.declines.get(agentId) ?? 0) + 1);
    this.queued.set(keyOfOrder, entry);
    this.readySince.set(keyOfOrder, now);
    if (fresh && !held) this.fresh.push(entry);
    return keyOfOrder;
  }

  /** Whether a workflow is paused: its queued orders are not offered. */
  isPaused(workflowId: string): boolean {
    return this.pausedBuckets.has(workflowId);
  }

  /** Stops offering a workflow's orders: its buckets leave `heads` (and the live buckets' maps), and are returned. O(its buckets). */
  pause(workflowId: string): readonly Bucket[] {
    const already = this.pausedBuckets.get(workflowId);
    if (already) return [...already.values()];
    const buckets = [...(this.bucketsOf.get(workflowId) ?? [])];
    this.bucketsOf.delete(workflowId);
    const held = new Map<string, Bucket>();
    for (const bucket of buckets) {
      this.buckets.delete(bucket.key);
      this.heads.remove(bucket);
      held.set(bucket.key, bucket);
    }
    this.pausedBuckets.set(workflowId, held);
    return buckets;
  }

  /**
   * Offers a paused workflow's orders again: its buckets are filed in `heads` anew, and returned.
   * `now` (wall clock): when it resumed; absent for a pause undone, which held nothing back.
   */
  resume(workflowId: string, now?: number): readonly Bucket[] {
    const held = this.pausedBuckets.get(workflowId);
    if (!held) return [];
    this.pausedBuckets.delete(workflowId);
    if (now !== undefined) this.resumedAt.set(workflowId, now);
    const buckets = [...held.values()];
    if (buckets.length > 0) this.bucketsOf.set(workflowId, new Set(buckets));
    for (const bucket of buckets) {
      this.buckets.set(bucket.key, bucket);
      this.heads.refile(bucket);
    }
    return buckets;
  }

  /** Since when a queued order has been ready to offer: queued, or its workflow resumed, whichever came last. */
  readyAt(workflowId: string, workOrderId: string, now: number): number {
    const since = this.readySince.get(orderKey(workflowId, workOrderId)) ?? now;
    const resumed = this.resumedAt.get(workflowId);
    return resumed !== undefined && resumed > since ? resumed : since;
  }

  /** An order's place in the queue, taken now if it has none. */
  private placeOf(keyOfOrder: string, order: WorkOrder, now: number, monotonicNow: number): Place {
    let place = this.places.get(keyOfOrder);
    // Aged on the monotonic clock (its wait so far by the wall clock, from now on by the monotonic one):
    // a step of the wall clock must not make orders queued after it look older or younger than the rest.
    if (!place) this.places.set(keyOfOrder, (place = { queuedAt: monotonicNow - (now - (order.queuedAt ?? now)), seq: ++this.seq }));
    return place;
  }

  /**
   * Files a queued order at a rebuild; one whose marker is not its need's is left for the scheduler
   * to settle, and so is every all_declined one: its `retryAt` follows declinedRetryMs, which the
   * index does not know (set, or dropped, when the setting changed across a restart).
   */
  private enqueueKnown(order: WorkOrder, key: string, now: number, monotonicNow: number, backoffAt: number | undefined): void {
    this.enqueue(order, now, monotonicNow, { fresh: false, backoffAt, key });
    // A paused workflow's orders carry no marker until it is resumed (pause.ts).
    if (this.pausedBuckets.has(order.workflowId)) return;
    const entry = this.queued.get(orderKey(order.workflowId, order.id));
    const waiting = order.waiting ?? null;
    if (waiting?.reason === 'all_declined' || !sameWaiting(waiting, entry ? this.capable.markerFor(entry.bucket.need, entry.declinedBy) : null)) this.capable.unsettled.push({ workflowId: order.workflowId, workOrderId: order.id });
  }

  /** Whether a queue entry still stands for its order. */
  isCurrent(entry: ReadyEntry): boolean {
    return this.queued.get(entry.orderKey) === entry;
  }

  /** Files an agent that may have a free slot under each of its task types. */
  makeAvailable(agent: Agent, undo?: UndoLog): void {
    for (const type of agent.taskTypes) this.available.file(type, agent, undo);
  }

  /** Every agent that may have a free slot, once each. */
  availableAgents(): Set<string> {
    return this.available.agentIds();
  }

  /** Forgets that an order is queued (it was offered); returns its orderKey. */
  dequeue(workflowId: string, workOrderId: string): string {
    const keyOfOrder = orderKey(workflowId, workOrderId);
    this.leaveBucket(keyOfOrder);
    this.readySince.delete(keyOfOrder);
    return keyOfOrder;
  }

  /** Forgets an order that ended: its queue entry, its place and its timers. `undo`: the command's (TimerQueue.end). */
  ended(workflowId: string, workOrderId: string, undo: UndoLog): void {
    const keyOfOrder = this.dequeue(workflowId, workOrderId);
    this.places.delete(keyOfOrder);
    this.delayed.end(keyOfOrder, undo);
    this.deadlines.end(keyOfOrder, undo);
    this.declineExpiries.end(keyOfOrder, undo);
  }

  /** Makes a queued order's entry stale, dropping its bucket when no current entry is left in it. */
  private leaveBucket(keyOfOrder: string): void {
    const entry = this.queued.get(keyOfOrder);
    if (!entry) return;
    this.queued.delete(keyOfOrder);
    const bucket = entry.bucket;
    for (const agentId of entry.declinedBy) {
      const left = bucket.declines.get(agentId)! - 1;
      if (left > 0) bucket.declines.set(agentId, left);
      else bucket.declines.delete(agentId);
    }
    if (--bucket.current === 0) this.dropBucket(bucket);
  }

  /** Drops a bucket (its last queued order left, or its queue ran out): from the map, and from its need. */
  dropBucket(bucket: Bucket): void {
    const held = this.pausedBuckets.get(bucket.workflowId);
    if (held) {
      if (held.get(bucket.key) === bucket) held.delete(bucket.key);
    } else {
      if (this.buckets.get(bucket.key) === bucket) this.buckets.delete(bucket.key);
      const ofWorkflow = this.bucketsOf.get(bucket.workflowId);
      if (ofWorkflow?.delete(bucket) && ofWorkflow.size === 0) this.bucketsOf.delete(bucket.workflowId);
    }
    this.heads.remove(bucket);
    this.capable.leave(bucket.need, bucket);
  }

  /** Files a bucket anew after the scheduler took entries out of its queue (and put some back); not one dropped (or paused) meanwhile. */
  queueChanged(bucket: Bucket): void {
    if (this.buckets.get(bucket.key) === bucket) this.heads.refile(bucket);
  }

  /** Starts the overall-timeout clock of an order: what is left of it by the wall clock, run on the monotonic one (or `at`, a rebuild's). */
  watchDeadline(order: WorkOrder, now: number, monotonicNow: number, { at, undo, key }: { at?: number | undefined; undo?: UndoLog; key?: string } = {}): void {
    if (order.timeouts.overallMs !== null && order.firstQueuedAt !== null) {
      const timer = { at: at ?? monotonicNow + (order.firstQueuedAt + order.timeouts.overallMs - now), workflowId: order.workflowId, workOrderId: order.id, key: key ?? orderKey(order.workflowId, order.id), firstQueuedAt: order.firstQueuedAt, slot: -1 };
      this.deadlines.push(timer, undo);
    }
  }

  /** Starts the timer that forgets an all_declined order's declines at `retryAt` (wall clock), run on the monotonic clock (or `at`, a rebuild's). */
  watchDeclines(order: Pick<WorkOrder, 'workflowId' | 'id'>, retryAt: number, now: number, monotonicNow: number, { at, undo, key }: { at?: number | undefined; undo?: UndoLog; key?: string } = {}): void {
    this.declineExpiries.push({ at: at ?? monotonicNow + (retryAt - now), retryAt, workflowId: order.workflowId, workOrderId: order.id, key: key ?? orderKey(order.workflowId, order.id), slot: -1 }, undo);
  }

  /** Drops every runtime entry of an agent the pool forgot (offline, so it holds no work). */
  forgetAgent(agent: Pick<Agent, 'id' | 'taskTypes'>): void {
    for (const type of agent.taskTypes) this.available.unfile(type, agent.id);
    this.connected.delete(agent.id);
    this.disconnected.delete(agent.id);
    this.byAgent.delete(agent.id);
    this.freed.delete(agent.id);
  }

  /** Records an attempt as in flight. */
  hold(attempt: ActiveAttempt): void {
    this.active.set(attempt.token, attempt);
    let tokens = this.byAgent.get(attempt.agentId);
    if (!tokens) this.byAgent.set(attempt.agentId, (tokens = new Set()));
    tokens.add(attempt.token);
    let agents = this.workflowAgents.get(attempt.workflowId);
    if (!agents) this.workflowAgents.set(attempt.workflowId, (agents = new StableMap()));
    agents.set(attempt.agentId, (agents.get(attempt.agentId) ?? 0) + 1);
  }

  /**
   * An offer's batch was stored and the offer leaves for its agent: its accept window runs from
   * now. Timed from when it was made, a journal write slower than acceptMs let the sweep withdraw
   * an offer its agent never saw, and hold that silence against the agent.
   */
  offerSent(attemptToken: string, acceptMs: number, monotonicNow: number): void {
    if (!this.unsent.delete(attemptToken)) return;
    const active = this.active.get(attemptToken);
    if (active?.phase === 'offered') active.offerDeadline = Math.max(active.offerDeadline, monotonicNow + acceptMs);
  }

  /** Forgets an attempt that ended; an agent or workflow left with none leaves these maps. */
  release(token: string): ActiveAttempt | undefined {
    const attempt = this.active.get(token);
    if (!attempt) return undefined;
    this.active.delete(token);
    this.leases.delete(token);
    const tokens = this.byAgent.get(attempt.agentId);
    tokens?.delete(token);
    if (tokens?.size === 0) this.byAgent.delete(attempt.agentId);
    const agents = this.workflowAgents.get(attempt.workflowId);
    const count = (agents?.get(attempt.agentId) ?? 1) - 1;
    if (count > 0) agents!.set(attempt.agentId, count);
    else agents?.delete(attempt.agentId);
    if (agents?.size === 0) this.workflowAgents.delete(attempt.workflowId);
    this.freed.add(attempt.agentId);
    return attempt;
  }

  /**
   * Drops every entry of a workflow: its buckets and queued orders, its attempts (and their
   * leases), its agent counts, its order list and its catalog. For a workflow leaving memory once it has
   * ended, so it holds no attempt; the agents' loads are the documents', not the index's. Its orders
   * ended before, and left their timers then (ended()).
   */
  forgetWorkflow(workflowId: string): void {
    this.resumedAt.delete(workflowId);
    for (const bucket of [...(this.bucketsOf.get(workflowId) ?? []), ...(this.pausedBuckets.get(workflowId)?.values() ?? [])]) {
      this.dropBucket(bucket);
      for (const entry of bucket.queue.values()) {
        if (this.queued.get(entry.orderKey) !== entry) continue;
        this.queued.delete(entry.orderKey);
        this.readySince.delete(entry.orderKey);
      }
    }
    for (const agentId of [...(this.workflowAgents.get(workflowId)?.keys() ?? [])]) {
      for (const token of [...(this.byAgent.get(agentId) ?? [])]) if (this.active.get(token)?.workflowId === workflowId) this.release(token);
    }
    let kept = 0;
    for (const entry of this.fresh) if (entry.workflowId !== workflowId) this.fresh[kept++] = entry;
    this.fresh.length = kept;
    this.orderLists.forget(workflowId);
    this.catalogs.forget(workflowId);
    this.pausedBuckets.delete(workflowId);
  }

  /** Rebuilds everything derived from the documents; presence, leases and the timers of what is still there are kept. The clocks are Environment's (one, when given one). */
  rebuild(workflows: Iterable<Workflow>, agents: Record<string, Agent> | undefined, now: number, monotonicNow = now): void {
    // The timers this index ran already go on for what is still there (a rollback, a promotion):
    // recomputed from the wall clock, a step of it since they were set would end or stretch them.
    const offerDeadlines = new Map([...this.active].map(([token, active]) => [token, active.offerDeadline]));
    // Offers carried in a reply stay so: a rebuild after a failed change elsewhere is no reason to hold their silence against the agent.
    const carried = new Set([...this.active].filter(([, active]) => active.carried).map(([token]) => token));
    const heldUntil = new Map([...this.active].filter(([, active]) => active.heldUntil !== undefined).map(([token, active]) => [token, active.heldUntil!]));
    const backoffs = new Map<string, number>();
    for (let due; (due = this.delayed.pop()); ) backoffs.set(`${due.key}@${due.notBefore}`, due.at);
    const deadlines = new Map<string, number>();
    for (let due; (due = this.deadlines.pop()); ) deadlines.set(`${due.key}@${due.firstQueuedAt}`, due.at);
    const expiries = new Map<string, number>();
    for (let due; (due = this.declineExpiries.pop()); ) expiries.set(`${due.key}@${due.retryAt}`, due.at);
    this.buckets.clear();
    this.heads.clear();
    this.bucketsOf.clear();
    this.pausedBuckets.clear();
    this.queued.clear();
    this.readySince.clear();
    this.resumedAt.clear();
    this.active.clear();
    this.byAgent.clear();
    this.workflowAgents.clear();
    this.fresh.length = 0;
    this.orderLists.clear();
    this.catalogs.clear();
    this.offline.clear();
    this.capable.clear();
    // The places of orders still unfinished are kept, as the timers are.
    const places = new Map(this.places);
    this.places.clear();
    this.agentIds.rebuild(Object.keys(agents ?? {}));
    // Presence is kept, but what each agent is sorted by comes from the documents as they are now.
    this.available.rekeyAll(agents);
    for (const agent of Object.values(agents ?? {})) {
      // An offline agent without the time (an older document) gets it at start-up (hub.recover).
      if (agent.status === 'offline' && typeof agent.offlineSince === 'number') this.offline.watch(agent.id, agent.offlineSince);
      if (takesWork(agent)) this.capable.file(agent.id, filingFrom(agent));
    }
    const liveTokens = new Set<string>();
    for (const workflow of workflows) {
      // Listed now, at start-up: a big read or a page of orders never enumerates them later.
      this.orderLists.of(workflow);
      // Before its orders are filed: a paused workflow's stay out of `heads`. A pending one starts paused.
      if (workflow.paused) this.pausedBuckets.set(workflow.id, new Map());
      if (workflow.status !== 'in_progress') continue;
      for (const order of Object.values(workflow.workOrders)) {
        const key = orderKey(workflow.id, order.id);
        const place = places.get(key);
        if (place && (order.state === 'queued' || order.state === 'offered' || order.state === 'running')) this.places.set(key, place);
        if (order.state === 'queued') this.enqueueKnown(order, key, now, monotonicNow, backoffs.get(`${key}@${order.notBefore}`));
        const retryAt = order.state === 'queued' ? order.waiting?.retryAt : undefined;
        if (retryAt !== undefined) this.watchDeclines(order, retryAt, now, monotonicNow, { at: expiries.get(`${key}@${retryAt}`), key });
        if (order.state === 'queued' || order.state === 'offered' || order.state === 'running' || order.state === 'blocked') this.watchDeadline(order, now, monotonicNow, { at: deadlines.get(`${key}@${order.firstQueuedAt}`), key });
        const attempt = order.attempt;
        if (!attempt || (order.state !== 'offered' && order.state !== 'running')) continue;
        // Its place for when it is queued again (in the order orders are listed, unless it had one).
        this.placeOf(key, order, now, monotonicNow);
        liveTokens.add(attempt.token);
        this.hold({
          token: attempt.token,
          workflowId: workflow.id,
          workOrderId: order.id,
          agentId: attempt.agentId,
          phase: order.state,
          // What is left of the accept window, by the wall clock the offer was stamped with, unless timed already.
          offerDeadline: offerDeadlines.get(attempt.token) ?? monotonicNow + (attempt.offeredAt + order.timeouts.acceptMs - now),
          ...(carried.has(attempt.token) ? { carried: true } : {}),
          ...(heldUntil.has(attempt.token) ? { heldUntil: heldUntil.get(attempt.token)! } : {}),
        });
        if (order.state === 'running' && !this.leases.has(attempt.token)) this.leases.set(attempt.token, monotonicNow + order.timeouts.leaseMs);
      }
    }
    for (const token of this.leases.keys()) if (!liveTokens.has(token)) this.leases.delete(token);
    // Connected agents may have free slots for what is queued now: let the next pass look.
    for (const agentId of this.connected) this.freed.add(agentId);
  }
}
