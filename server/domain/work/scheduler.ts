import type { Agent } from '../../../shared/schemas/agent.ts';
import type { Assignment, WorkOrder } from '../../../shared/schemas/work-order.ts';
import { canServe, eligible, type Situation } from './assignment.ts';
import { choosePlacement } from './placement.ts';
import { recordOffer } from './attempt-records.ts';
import { requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { assignmentInputs } from '../data/inventory.ts';
import { setOrderState } from './work-orders.ts';
import { settleWaiting } from './unservable.ts';
import type { Bucket, ReadyEntry } from './work-index.ts';
import { before } from './bucket-heads.ts';

/**
 * How far down a bucket an agent looks past orders it declined before, by popping them, before it
 * looks at the rest of the bucket whole. (A workflow at its maxConcurrentAgents closes the whole
 * bucket at once, so only declines are skipped one by one.)
 */
const SCAN_LIMIT = 64;

/** The facts the hard filter needs about an agent and an order's workflow. */
function situation(t: CommandContext, agentId: string, workflowId: string): Situation {
  const holders = t.state.work.workflowAgents.get(workflowId);
  return {
    connected: t.state.work.connected.has(agentId),
    activeInWorkflow: holders?.has(agentId) ?? false,
    workflowAgents: holders?.size ?? 0,
    maxConcurrentAgents: t.state.workflows.get(workflowId)!.config.maxConcurrentAgents,
  };
}

function orderOf(t: CommandContext, entry: { workflowId: string; workOrderId: string }): WorkOrder | undefined {
  return t.state.workflows.get(entry.workflowId)?.workOrders[entry.workOrderId];
}

/** Offers an order to an agent: a new attempt token, the agent's slot taken, the push queued. */
function offer(t: CommandContext, order: WorkOrder, agent: Agent): void {
  const now = t.ctx.now;
  const token = t.ctx.newId('att');
  const readyAt = t.state.work.readyAt(order.workflowId, order.id, now);
  const attempt = { number: order.attempts + 1, token, agentId: agent.id, offeredAt: now, acceptedAt: null };
  setOrderState(t, order, 'offered', undefined, { attempt, notBefore: null });
  t.state.work.dequeue(order.workflowId, order.id);
  t.state.work.hold({ token, workflowId: order.workflowId, workOrderId: order.id, agentId: agent.id, phase: 'offered', offerDeadline: t.ctx.monotonicNow + order.timeouts.acceptMs });
  recordOffer(t, order, agent.id);
  t.tx.effect({
    type: 'offer',
    agentId: agent.id,
    readyAt,
    assignment: {
      workflowId: order.workflowId,
      workOrderId: order.id,
      attemptToken: token,
      attempt: attempt.number,
      taskType: order.taskType,
      description: order.description,
      input: order.input,
      inputs: assignmentInputs(requireWorkflow(t.state, order.workflowId), order),
      priority: order.priority,
      requirements: order.requirements,
      checkpoint: order.checkpoint,
      acceptMs: order.timeouts.acceptMs,
      leaseMs: order.timeouts.leaseMs,
    },
  });
}

/** The best entry of a bucket this agent may take now; stale entries are dropped on the way. */
function headFor(t: CommandContext, bucket: Bucket, agent: Agent): ReadyEntry | undefined {
  const work = t.state.work;
  const room = situation(t, agent.id, bucket.workflowId);
  if (room.maxConcurrentAgents !== null && !room.activeInWorkflow && room.workflowAgents >= room.maxConcurrentAgents) return undefined;
  const passed: ReadyEntry[] = [];
  let found: ReadyEntry | undefined;
  while (bucket.queue.size > 0 && passed.length < SCAN_LIMIT) {
    const entry = bucket.queue.peek()!;
    const order = orderOf(t, entry);
    if (!work.isCurrent(entry) || !order || order.state !== 'queued') {
      bucket.queue.pop();
      continue;
    }
    if (eligible(agent, order, situation(t, agent.id, entry.workflowId))) {
      found = entry;
      break;
    }
    passed.push(bucket.queue.pop()!);
  }
  for (const entry of passed) bucket.queue.push(entry);
  work.queueChanged(bucket);
  // Behind more declined orders than that: the rest is looked at whole, or an order this agent
  // could take would wait for a change that may never come (nothing else offers it to this agent).
  // Not when it declined every one (an agent declining all it is offered would walk it at each decline).
  if (!found && passed.length === SCAN_LIMIT && bucket.current > (bucket.declines.get(agent.id) ?? 0)) found = bestEligible(t, bucket, agent);
  return found;
}

/** The first in queue order of a bucket's current entries this agent may take: a walk of every entry. */
function bestEligible(t: CommandContext, bucket: Bucket, agent: Agent): ReadyEntry | undefined {
  let best: ReadyEntry | undefined;
  for (const entry of bucket.queue.values()) {
    if (best && (entry.key < best.key || (entry.key === best.key && entry.seq > best.seq))) continue;
    const order = orderOf(t, entry);
    if (!t.state.work.isCurrent(entry) || !order || order.state !== 'queued') continue;
    if (eligible(agent, order, situation(t, agent.id, entry.workflowId))) best = entry;
  }
  return best;
}

/** Gives a free agent the best queued orders it can take, until its slots are full. */
function fillAgent(t: CommandContext, agentId: string): void {
  const agent = t.state.agents?.[agentId];
  if (!agent) return;
  while (agent.load < agent.maxConcurrentTasks && agent.status !== 'draining' && agent.status !== 'offline' && t.state.work.connected.has(agentId)) {
    const best = bestFor(t, agent);
    if (!best) return;
    offer(t, orderOf(t, best)!, agent);
  }
}

/**
 * The best entry an agent may take now, across the buckets of its task types, looked at best first
 * by their first entry: no entry of a bucket beats its first, so the walk ends at the first bucket
 * that cannot beat the best found (BucketHeads), not at the last bucket of the hub.
 */
function bestFor(t: CommandContext, agent: Agent): ReadyEntry | undefined {
  const work = t.state.work;
  let best: ReadyEntry | undefined;
  // headFor may refile a bucket further on (stale entries popped): it is not looked at twice.
  const seen = new Set<Bucket>();
  for (let at, next; (next = work.heads.next(agent.taskTypes, at)); at = next.head) {
    const { bucket, head: filed } = next;
    if (best && !before(filed, best)) break;
    if (seen.has(bucket) || !canServe(agent, bucket)) continue;
    seen.add(bucket);
    const head = headFor(t, bucket, agent);
    if (bucket.queue.size === 0) work.dropBucket(bucket);
    if (head && (!best || before(head, best))) best = head;
  }
  return best;
}

/** Offers a newly ready order to the best connected agent that may take it, if any (placement.ts). */
function placeOrder(t: CommandContext, order: WorkOrder): void {
  const agent = choosePlacement(t, order);
  if (agent) offer(t, order, agent);
}

/**
 * The offers this command made to `agentId`, taken out of the pushes to go in its report's reply
 * (`next`): the agent asked for its next work with its completion or failure, saving a round trip.
 */
export function carryOffers(t: CommandContext, agentId: string): Assignment[] {
  const carried: Assignment[] = [];
  for (const effect of t.tx.effects) {
    if (effect.type !== 'offer' || effect.agentId !== agentId) continue;
    effect.inReply = true;
    const active = t.state.work.active.get(effect.assignment.attemptToken);
    if (active) active.carried = true;
    carried.push(effect.assignment);
  }
  return carried;
}

/**
 * Runs after every command: agents that got a free slot take the best work they can, then orders
 * that became ready go to the best free agent. Work nobody can take stays queued until an agent
 * that can take it registers or frees a slot; when no agent that takes work could ever take it,
 * it is marked `waiting`. Cost is proportional to what changed.
 */
export function schedule(t: CommandContext): void {
  const work = t.state.work;
  const unsettled = work.capable.unsettled;
  // Most commands (progress, heartbeats) free no agent and ready no order: nothing to do.
  if (work.freed.size === 0 && work.fresh.length === 0 && unsettled.length === 0) return;
  for (const agentId of work.freed) {
    const agent = t.state.agents?.[agentId];
    if (agent) work.makeAvailable(agent, t.tx);
    fillAgent(t, agentId);
  }
  work.freed.clear();
  // By the queue's own keys, aged on the monotonic clock (WorkIndex.enqueue); one no longer queued last.
  // Entries as they were filed (their orderKey made once), in one array: a start files 100,000.
  const fresh: Array<{ ready: ReadyEntry; order: WorkOrder; key: number }> = [];
  for (const ready of work.fresh) {
    const order = orderOf(t, ready);
    if (order) fresh.push({ ready, order, key: work.queued.get(ready.orderKey)?.key ?? -Infinity });
  }
  work.fresh.length = 0;
  fresh.sort((a, b) => (a.key === b.key ? 0 : b.key > a.key ? 1 : -1));
  for (const { ready, order } of fresh) if (order.state === 'queued' && work.queued.has(ready.orderKey)) placeOrder(t, order);
  // Those still queued: marked when no agent that takes work can do them.
  settleWaiting(t, unplaced(fresh), unsettled.splice(0));
}

/** The entries of `fresh` whose orders are still queued. */
function* unplaced(fresh: ReadonlyArray<{ ready: ReadyEntry; order: WorkOrder }>): Iterable<ReadyEntry> {
  for (const { ready, order } of fresh) if (order.state === 'queued') yield ready;
}
