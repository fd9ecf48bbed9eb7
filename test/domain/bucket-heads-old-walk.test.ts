import { describe, expect, it } from 'vitest';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import type { HubState } from '../../server/domain/machinery/state.ts';
import { canServe, eligible } from '../../server/domain/work/assignment.ts';
import type { Bucket, ReadyEntry } from '../../server/domain/work/work-index.ts';
import { domain } from '../helpers/domain.ts';
import { asAgent, seeded } from '../helpers/random-work.ts';

const SCAN_LIMIT = 64;
let scanLimitHits = 0;
const inOrder = (a: ReadyEntry, b: ReadyEntry) => (a.key !== b.key ? b.key - a.key : a.seq - b.seq);

/** What the old walk's headFor chose in a bucket, read without changing it. */
function oldHead(state: HubState, bucket: Bucket, agentId: string): ReadyEntry | undefined {
  const agent = state.agents![agentId]!;
  const holders = state.work.workflowAgents.get(bucket.workflowId);
  const room = { connected: state.work.connected.has(agentId), activeInWorkflow: holders?.has(agentId) ?? false, workflowAgents: holders?.size ?? 0, maxConcurrentAgents: state.workflows.get(bucket.workflowId)!.config.maxConcurrentAgents };
  if (room.maxConcurrentAgents !== null && !room.activeInWorkflow && room.workflowAgents >= room.maxConcurrentAgents) return undefined;
  const entries = [...bucket.queue.values()].filter((entry) => {
    const order = state.workflows.get(entry.workflowId)?.workOrders[entry.workOrderId];
    return state.work.isCurrent(entry) && order?.state === 'queued';
  });
  entries.sort(inOrder);
  const ok = (entry: ReadyEntry) => eligible(agent, state.workflows.get(entry.workflowId)!.workOrders[entry.workOrderId]!, room);
  let passed = 0;
  for (const entry of entries) {
    if (ok(entry)) return entry;
    if (++passed === SCAN_LIMIT) break;
  }
  if (passed === SCAN_LIMIT) scanLimitHits++;
  if (passed === SCAN_LIMIT && bucket.current > (bucket.declines.get(agentId) ?? 0)) return entries.find(ok);
  return undefined;
}

/** The old walk over every bucket of the hub, but those of paused workflows. */
function oldChoice(state: HubState, agentId: string): string | undefined {
  const agent = state.agents![agentId]!;
  let best: ReadyEntry | undefined;
  for (const bucket of state.work.buckets.values()) {
    if (!canServe(agent, bucket) || state.workflows.get(bucket.workflowId)!.paused) continue;
    const head = oldHead(state, bucket, agentId);
    if (head && (!best || inOrder(head, best) < 0)) best = head;
  }
  return best && `${best.workflowId}/${best.workOrderId}`;
}

describe('BucketHeads against the old walk over every bucket', () => {
  it('chooses what the old walk chose, with declines past the scan limit, maxConcurrentAgents, draining, paused workflows and rebuilds', () => {
    for (const seed of [1, 3]) {
      const random = seeded(seed);
      const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
      const d = domain();
      const agents = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
      // a6 declines all it is offered: its declines pile up past the scan limit at the front of a bucket.
      const kinds = [['a'], ['b'], ['a', 'b'], ['*'], ['c', '*'], ['a']];
      agents.forEach((agentId, i) => d.register(agentId, { taskTypes: kinds[i]!, capabilities: random() < 0.5 ? ['x'] : [], maxConcurrentTasks: 1 + Math.floor(random() * 2) }));
      const workflows = Array.from({ length: 8 }, (_, i) => {
        const id = `wf${i}`;
        d.run('workflow.create', CreateWorkflowInput.parse({ id, userQuery: 'q', config: { maxConcurrentAgents: i % 3 === 0 ? 1 + (i % 2) : null } }));
        d.run('workflow.start', { workflowId: id });
        return id;
      });
      // Every walk of a freed agent (known by its task types' array, which bestFor passes) is checked at its start, against the old walk on the same state.
      let walks: Array<{ agentId: string; expected: string | undefined }> = [];
      const heads = d.state.work.heads;
      const next = heads.next.bind(heads);
      heads.next = (taskTypes, after) => {
        if (after === undefined) {
          const agentId = Object.values(d.state.agents!).find((agent) => agent.taskTypes === taskTypes)!.id;
          walks.push({ agentId, expected: oldChoice(d.state, agentId) });
        }
        return next(taskTypes, after);
      };
      let checked = 0;
      let id = 0;
      for (let step = 0; step < 4_000; step++) {
        if (random() < 0.3) d.advance(Math.floor(random() * 20_000));
        const choice = random();
        if (choice < 0.25) {
          const orders = Array.from({ length: 1 + Math.floor(random() * (random() < 0.1 ? 80 : 3)) }, () => ({
            id: `o${id++}`,
            taskType: pick(['a', 'b', 'c']),
            requirements: random() < 0.2 ? ['x'] : [],
            priority: pick(['low', 'normal', 'high', 'critical'] as const),
          }));
          d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: pick(workflows), orders }));
          continue;
        }
        if (choice < 0.28) {
          d.run('agent.status', { status: random() < 0.5 ? 'draining' : 'active' }, asAgent(pick(agents)));
          continue;
        }
        if (choice < 0.295) {
          // A workflow paused or resumed: its buckets leave the heads or come back.
          const workflowId = pick(workflows);
          d.run(d.state.workflows.get(workflowId)!.paused ? 'workflow.resume' : 'workflow.pause', { workflowId });
          continue;
        }
        if (choice < 0.3) {
          // A rollback's rebuild: the heads are filed anew from the documents.
          d.state.work.rebuild(d.state.workflows.values(), d.state.agents, 0);
          continue;
        }
        const held = [...d.state.work.active.values()];
        if (held.length === 0) continue;
        const active = pick(held);
        const ref = { workflowId: active.workflowId, workOrderId: active.workOrderId, attemptToken: active.token };
        walks = [];
        const { tx } =
          active.phase === 'offered'
            ? d.run('offer.answer', { ...ref, accept: active.agentId !== 'a6' && random() < 0.6 }, asAgent(active.agentId))
            : random() < 0.7
              ? d.run('task.complete', ref, asAgent(active.agentId))
              : d.run('task.fail', { ...ref, error: 'boom', retryable: false }, asAgent(active.agentId));
        // Each walk's choice is offered to its agent, in turn.
        const offers = tx.effects.flatMap((effect) => (effect.type === 'offer' ? [{ agentId: effect.agentId, id: `${effect.assignment.workflowId}/${effect.assignment.workOrderId}` }] : []));
        expect(offers.slice(0, walks.filter((walk) => walk.expected).length)).toEqual(walks.flatMap((walk) => (walk.expected ? [{ agentId: walk.agentId, id: walk.expected }] : [])));
        checked += walks.filter((walk) => walk.expected).length;
      }
      expect(checked).toBeGreaterThan(200);
    }
    expect(scanLimitHits).toBeGreaterThan(0);
  });
});
