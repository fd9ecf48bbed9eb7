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

describe('an order every agent that can take it declined', () => {
  it('is marked all_declined and counted, until an agent that has not declined it registers and runs it', async () => {
    const { hub, wf, worker } = await rawAgentOnStartedWorkflow('a', 'declined by all');
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    (await worker.nextOffer()).ack({ accept: false, reason: 'not mine' });
    const declined = await untilOrder(hub, wf.id, 'job', 'queued');
    expect(declined).toMatchObject({ declinedBy: ['a'], waiting: { reason: 'all_declined' } });
    expect((await wf.summary()).unservable).toBe(1);

    const other = await rawAgent(hub.url, 'b', ['t']);
    const offer = await other.nextOffer();
    expect(offer.assignment.workOrderId).toBe('job');
    expect((await wf.getWorkOrder('job')).waiting).toBeNull();
    expect((await wf.summary()).unservable).toBe(0);
    offer.ack({ accept: true });
    expect((await other.request('task.complete', refOf(offer.assignment))).ok).toBe(true);
    expect(await untilOrder(hub, wf.id, 'job', 'completed')).toMatchObject({ waiting: null, history: [{ agentId: 'b', outcome: 'completed' }] });
    expect((await wf.summary()).unservable).toBe(0);
  });

  it('is marked once the last agent that had not declined it starts draining, and cleared when it takes work again', async () => {
    const { hub, wf, worker: busy } = await rawAgentOnStartedWorkflow('a', 'declined by the rest');
    await wf.createWorkOrder({ id: 'hold', taskType: 't' });
    const held = await busy.nextOffer();
    held.ack({ accept: true });
    await untilOrder(hub, wf.id, 'hold', 'running');
    const picky = await rawAgent(hub.url, 'b', ['t']);
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    (await picky.nextOffer()).ack({ accept: false, reason: 'not mine' });
    // `a` can take it once its slot is free: no marker.
    expect(await untilOrder(hub, wf.id, 'job', 'queued')).toMatchObject({ declinedBy: ['b'], waiting: null });

    expect((await busy.request('agent.status', { status: 'draining' })).ok).toBe(true);
    expect((await wf.getWorkOrder('job')).waiting).toMatchObject({ reason: 'all_declined' });
    expect((await wf.summary()).unservable).toBe(1);

    expect((await busy.request('agent.status', { status: 'active' })).ok).toBe(true);
    expect((await wf.getWorkOrder('job')).waiting).toBeNull();
    expect((await wf.summary()).unservable).toBe(0);
    expect((await busy.request('task.complete', refOf(held.assignment))).ok).toBe(true);
    expect((await busy.nextOffer()).assignment.workOrderId).toBe('job');
  });

  it('gives way to no_capable_agent when no agent of the task type is left, and comes back when the agent that declined returns', async () => {
    const { hub, wf, worker } = await rawAgentOnStartedWorkflow('a', 'declined, then nobody');
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    (await worker.nextOffer()).ack({ accept: false, reason: 'not mine' });
    expect(await untilOrder(hub, wf.id, 'job', 'queued')).toMatchObject({ waiting: { reason: 'all_declined' } });
    expect((await worker.request('agent.status', { status: 'draining' })).ok).toBe(true);
    expect((await wf.getWorkOrder('job')).waiting).toEqual({ reason: 'no_capable_agent', taskType: 't' });
    expect((await worker.request('agent.status', { status: 'active' })).ok).toBe(true);
    expect((await wf.getWorkOrder('job')).waiting).toMatchObject({ reason: 'all_declined' });
    expect((await wf.summary()).unservable).toBe(1);
  });
});
