import { describe, expect, it } from 'vitest';
import { rawAgent, rawAgentOnStartedWorkflow, refOf } from './helpers/raw-agent.ts';
import { untilOrder } from './helpers/wait.ts';

describe('declined offers', () => {
  it('offers an agent an order queued behind more than 64 orders it declined, once its slot is free', async () => {
    const { wf, worker } = await rawAgentOnStartedWorkflow('a', 'behind many declines');
    await wf.createWorkOrders(Array.from({ length: 65 }, (_, i) => ({ id: `o${i}`, taskType: 't' })));
    for (let i = 0; i < 64; i++) (await worker.nextOffer()).ack({ accept: false, reason: 'not these' });
    const kept = await worker.nextOffer();
    kept.ack({ accept: true });
    // Queued after the declined ones, while the agent's one slot is taken.
    await wf.createWorkOrder({ id: 'late', taskType: 't' });
    expect((await wf.getWorkOrder('late')).state).toBe('queued');
    expect((await worker.request('task.complete', refOf(kept.assignment))).ok).toBe(true);
    expect((await wf.getWorkOrder('late')).state).toBe('offered');
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('late');
  });
});

describe('declines of a draining agent', () => {
  it('counts the decline of an agent that is draining against neither the order nor the agent, and offers it the order again once active', async () => {
    const { hub, client, wf, worker } = await rawAgentOnStartedWorkflow('a', 'drain while offered');
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const offer = await worker.nextOffer();
    expect((await worker.request('agent.status', { status: 'draining' })).ok).toBe(true);
    offer.ack({ accept: false, reason: 'draining' });
    await untilOrder(hub, wf.id, 'job', 'queued');
    const order = await wf.getWorkOrder('job');
    expect(order.declinedBy).toEqual([]);
    expect((await client.listAgents())[0]!.stats.declined).toBe(0);
    expect((await wf.get()).agents['a']!.declined).toBe(0);
    expect((await worker.request('agent.status', { status: 'active' })).ok).toBe(true);
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('job');
  });
});

describe('the place of a declined order', () => {
  it('keeps a declined order ahead of the orders created with it, as it was: the next free agent is offered it first', async () => {
    const { hub, wf, worker } = await rawAgentOnStartedWorkflow('a', 'declined keeps its place');
    // One batch: the same priority and time, so arrival order alone ranks them.
    await wf.createWorkOrders(['o1', 'o2', 'o3'].map((id) => ({ id, taskType: 't' })));
    const first = await worker.nextOffer();
    expect(first.assignment.workOrderId).toBe('o1');
    first.ack({ accept: false, reason: 'not this one' });
    expect((await worker.nextOffer()).assignment.workOrderId).toBe('o2');
    const other = await rawAgent(hub.url, 'b', ['t']);
    expect((await other.nextOffer()).assignment.workOrderId).toBe('o1');
    expect((await wf.getWorkOrder('o3')).state).toBe('queued');
  });
});
