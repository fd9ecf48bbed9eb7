import { describe, expect, it } from 'vitest';
import { HubError } from '../../shared/errors.ts';
import { CreateWorkOrderInput, CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { applyCommand } from '../../server/domain/machinery/commands.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { ADMIN, SETTINGS, domain } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

/** Creates and starts a workflow; returns its id. */
function startWorkflow(d: Domain, config: Record<string, unknown> = {}, id?: string): string {
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ ...(id ? { id } : {}), userQuery: 'q', config })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  return workflowId;
}

function setup(config: Record<string, unknown> = {}) {
  const d = domain();
  return { d, workflowId: startWorkflow(d, config) };
}

function register(d: Domain, agentId: string, fields: Record<string, unknown> = {}) {
  return d.register(agentId, fields);
}

const offers = (effects: Effect[]) => effects.filter((e) => e.type === 'offer').map((e) => (e.type === 'offer' ? e : never()));
function never(): never {
  throw new Error('unreachable');
}

function create(d: Domain, workflowId: string, spec: Record<string, unknown>) {
  return d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, ...spec }));
}

/** Accepts the current offer of an order as its agent. */
function accept(d: Domain, workflowId: string, workOrderId: string) {
  const attempt = d.state.workflows.get(workflowId)!.workOrders[workOrderId]!.attempt!;
  d.run('offer.answer', { workflowId, workOrderId, attemptToken: attempt.token, accept: true }, asAgent(attempt.agentId));
  return attempt;
}

function complete(d: Domain, workflowId: string, workOrderId: string) {
  const attempt = d.state.workflows.get(workflowId)!.workOrders[workOrderId]!.attempt!;
  return d.run('task.complete', { workflowId, workOrderId, attemptToken: attempt.token }, asAgent(attempt.agentId));
}

const stateOf = (d: Domain, workflowId: string, id: string) => d.state.workflows.get(workflowId)!.workOrders[id]!.state;

describe('scheduling (domain, manual clock)', () => {
  it('offers a new order to a capable agent at once, and leaves it queued when nobody can serve it', () => {
    const { d, workflowId } = setup();
    register(d, 'csv-agent', { capabilities: ['csv'] });
    const served = create(d, workflowId, { id: 'a', taskType: 'load', requirements: ['csv'] });
    expect(offers(served.tx.effects).map((o) => o.agentId)).toEqual(['csv-agent']);
    const waiting = create(d, workflowId, { id: 'b', taskType: 'load', requirements: ['parquet'] });
    expect(offers(waiting.tx.effects)).toEqual([]);
    expect(stateOf(d, workflowId, 'b')).toBe('queued');
    // The moment a capable agent registers, it gets the order.
    const joined = register(d, 'parquet-agent', { capabilities: ['parquet'] });
    expect(offers(joined.tx.effects).map((o) => [o.agentId, o.assignment.workOrderId])).toEqual([['parquet-agent', 'b']]);
  });

  it('offers a new order to an agent that was full when earlier orders came and has since been freed', () => {
    const { d, workflowId } = setup();
    register(d, 'a');
    register(d, 'b');
    const [first, second] = ['1', '2'].map((id) => offers(create(d, workflowId, { id, taskType: 'job' }).tx.effects)[0]!.agentId);
    expect([first, second].sort()).toEqual(['a', 'b']);
    accept(d, workflowId, '1');
    accept(d, workflowId, '2');
    // Both are full: the order waits, and the scheduler has seen each of them without a free slot.
    expect(offers(create(d, workflowId, { id: '3', taskType: 'job' }).tx.effects)).toEqual([]);
    expect(offers(complete(d, workflowId, '1').tx.effects).map((o) => [o.agentId, o.assignment.workOrderId])).toEqual([[first, '3']]);
    accept(d, workflowId, '3');
    expect(offers(create(d, workflowId, { id: '4', taskType: 'job' }).tx.effects)).toEqual([]);
    expect(offers(complete(d, workflowId, '2').tx.effects).map((o) => [o.agentId, o.assignment.workOrderId])).toEqual([[second, '4']]);
    complete(d, workflowId, '3');
    expect(offers(create(d, workflowId, { id: '5', taskType: 'job' }).tx.effects).map((o) => o.agentId)).toEqual([first]);
  });

  it('lets a long-waiting low-priority order go before a fresh critical one (ageing)', () => {
    const { d, workflowId } = setup();
    register(d, 'solo', { maxConcurrentTasks: 1 });
    create(d, workflowId, { id: 'first', taskType: 't' });
    accept(d, workflowId, 'first');
    create(d, workflowId, { id: 'old-low', taskType: 't', priority: 'low' });
    d.advance(3 * 60_000 + 1);
    create(d, workflowId, { id: 'new-critical', taskType: 't', priority: 'critical' });
    create(d, workflowId, { id: 'new-low', taskType: 't', priority: 'low' });
    const done = complete(d, workflowId, 'first');
    expect(offers(done.tx.effects).map((o) => o.assignment.workOrderId)).toEqual(['old-low']);
    accept(d, workflowId, 'old-low');
    expect(offers(complete(d, workflowId, 'old-low').tx.effects).map((o) => o.assignment.workOrderId)).toEqual(['new-critical']);
  });

  it('refuses a dependency cycle and unknown dependencies, creating nothing', () => {
    const { d, workflowId } = setup();
    const cyclic = CreateWorkOrdersInput.parse({
      workflowId,
      orders: [
        { id: 'x', taskType: 't', dependencies: ['z'] },
        { id: 'y', taskType: 't', dependencies: ['x'] },
        { id: 'z', taskType: 't', dependencies: ['y'] },
      ],
    });
    expect(() => d.run('workOrder.createMany', cyclic)).toThrow(/dependency cycle/);
    expect(() => create(d, workflowId, { taskType: 't', dependencies: ['ghost'] })).toThrow(HubError);
    expect(d.state.workflows.get(workflowId)!.workOrders).toEqual({});
    expect(d.state.workflows.get(workflowId)!.workOrderCounts.pending).toBe(0);
  });

  it('fails the dependents of a failed order, unless they opt to continue', () => {
    const { d, workflowId } = setup();
    register(d, 'w');
    d.run(
      'workOrder.createMany',
      CreateWorkOrdersInput.parse({
        workflowId,
        orders: [
          { id: 'root', taskType: 't', maxAttempts: 1 },
          { id: 'strict', taskType: 't', dependencies: ['root'] },
          { id: 'grandchild', taskType: 't', dependencies: ['strict'] },
          { id: 'lenient', taskType: 't', dependencies: ['root'], continueOnDependencyFailure: true },
        ],
      }),
    );
    expect(stateOf(d, workflowId, 'strict')).toBe('blocked');
    const attempt = accept(d, workflowId, 'root');
    d.run('task.fail', { workflowId, workOrderId: 'root', attemptToken: attempt.token, error: 'boom', retryable: true }, asAgent('w'));
    const orders = d.state.workflows.get(workflowId)!.workOrders;
    expect(orders.root!.state).toBe('failed');
    expect(orders.strict).toMatchObject({ state: 'failed', error: 'dependency root failed' });
    expect(orders.grandchild).toMatchObject({ state: 'failed', error: 'dependency strict failed' });
    expect(['queued', 'offered']).toContain(orders.lenient!.state);
  });

  it('retries after a lapsed lease with backoff, hands over the checkpoint, and dead-letters after maxAttempts', () => {
    const { d, workflowId } = setup();
    register(d, 'w');
    create(d, workflowId, { id: 'job', taskType: 't', maxAttempts: 2, timeouts: { leaseMs: 1000 } });
    const first = accept(d, workflowId, 'job');
    d.run('task.progress', { workflowId, workOrderId: 'job', attemptToken: first.token, progress: 40, details: { row: 400 } }, asAgent('w'));
    d.advance(1001);
    d.run('hub.sweep', {});
    const order = () => d.state.workflows.get(workflowId)!.workOrders.job!;
    // Lapsed at 2001 ms; the first retry backs off backoffBaseMs (1000 ms).
    expect(order()).toMatchObject({ state: 'queued', attempts: 1, notBefore: 3001 });
    expect(order().history[0]).toMatchObject({ outcome: 'lease_expired', agentId: 'w' });
    d.advance(1000);
    const retried = d.run('hub.sweep', {});
    const offer = offers(retried.tx.effects)[0]!;
    expect(offer.assignment).toMatchObject({ attempt: 2, checkpoint: { row: 400 } });
    const second = accept(d, workflowId, 'job');
    d.run('task.fail', { workflowId, workOrderId: 'job', attemptToken: second.token, error: 'still broken', retryable: true }, asAgent('w'));
    expect(order()).toMatchObject({ state: 'failed', attempts: 2, error: 'failed after 2 attempt(s): still broken' });
  });

  it('refuses a stale attempt token with STALE_ATTEMPT and changes nothing', () => {
    const { d, workflowId } = setup();
    register(d, 'w');
    create(d, workflowId, { id: 'job', taskType: 't', timeouts: { leaseMs: 1000 } });
    const old = accept(d, workflowId, 'job');
    d.advance(1001);
    d.run('hub.sweep', {});
    const version = d.state.versions.get(workflowId);
    let code: string | undefined;
    try {
      d.run('task.complete', { workflowId, workOrderId: 'job', attemptToken: old.token }, asAgent('w'));
    } catch (error) {
      code = (error as HubError).code;
    }
    expect(code).toBe('STALE_ATTEMPT');
    expect(d.state.versions.get(workflowId)).toBe(version);
    expect(stateOf(d, workflowId, 'job')).toBe('queued');
  });

  it('withdraws an unanswered offer at the accept deadline and offers it to another agent', () => {
    const { d, workflowId } = setup();
    register(d, 'slow');
    create(d, workflowId, { id: 'job', taskType: 't', timeouts: { acceptMs: 500 } });
    register(d, 'quick');
    d.advance(501);
    const swept = d.run('hub.sweep', {});
    expect(offers(swept.tx.effects).map((o) => o.agentId)).toEqual(['quick']);
    expect(d.state.workflows.get(workflowId)!.workOrders.job!.declinedBy).toEqual(['slow']);
    // Had the slow agent accepted late and started, it is told to stop.
    expect(swept.tx.effects.filter((e) => e.type === 'cancel').map((e) => e.agentId)).toEqual(['slow']);
  });

  it('keeps a workflow within maxConcurrentAgents distinct agents', () => {
    const { d, workflowId } = setup({ maxConcurrentAgents: 2 });
    for (const id of ['a', 'b', 'c']) register(d, id, { maxConcurrentTasks: 2 });
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: Array.from({ length: 6 }, () => ({ taskType: 't' })) }));
    const holders = new Set(Object.values(d.state.workflows.get(workflowId)!.workOrders).flatMap((o) => (o.attempt ? [o.attempt.agentId] : [])));
    expect(holders.size).toBe(2);
    expect(d.state.workflows.get(workflowId)!.workOrderCounts.offered).toBe(4);
  });

  it('offers a capped workflow’s freed place to another agent at once', () => {
    const { d, workflowId } = setup({ maxConcurrentAgents: 1 });
    register(d, 'A', { taskTypes: ['x'] });
    register(d, 'B', { taskTypes: ['y'] });
    create(d, workflowId, { id: 'o1', taskType: 'x' });
    accept(d, workflowId, 'o1');
    create(d, workflowId, { id: 'o2', taskType: 'y' });
    expect(stateOf(d, workflowId, 'o2')).toBe('queued');
    const done = complete(d, workflowId, 'o1');
    expect(offers(done.tx.effects).map((o) => [o.agentId, o.assignment.workOrderId])).toEqual([['B', 'o2']]);
  });

  it('does not let a long queue of another, full workflow hide an order a free agent may take', () => {
    const d = domain();
    const w1 = startWorkflow(d, { maxConcurrentAgents: 1 }, 'w1');
    const w2 = startWorkflow(d, {}, 'w2');
    register(d, 'A', { taskTypes: ['x'] });
    register(d, 'B', { taskTypes: ['x', 'z'] });
    create(d, w2, { id: 'z1', taskType: 'z' });
    accept(d, w2, 'z1');
    // w1 is held by A and has 100 high-priority orders waiting; w2 has one normal order.
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId: w1, orders: Array.from({ length: 100 }, (_, i) => ({ id: `h${i}`, taskType: 'x', priority: 'high' })) }));
    create(d, w2, { id: 'lone', taskType: 'x' });
    const done = complete(d, w2, 'z1');
    expect(offers(done.tx.effects).map((o) => [o.agentId, o.assignment.workOrderId])).toEqual([['B', 'lone']]);
  });

  it('offers an order among the free agents of its task type and those of any type, as they last registered', () => {
    const { d, workflowId } = setup();
    register(d, 'typed', { taskTypes: ['x'] });
    register(d, 'other', { taskTypes: ['y'] });
    register(d, 'any', { taskTypes: ['*'] });
    const offeredTo = (id: string, taskType: string) => offers(create(d, workflowId, { id, taskType }).tx.effects).map((o) => o.agentId);
    // Equal scores: the never-assigned agent with the lower id wins the tie.
    expect(offeredTo('x1', 'x')).toEqual(['any']);
    expect(offeredTo('x2', 'x')).toEqual(['typed']);
    for (const id of ['x1', 'x2']) {
      accept(d, workflowId, id);
      complete(d, workflowId, id);
    }
    // Registering again changes what an agent is offered: `typed` now does z and no longer x.
    register(d, 'typed', { taskTypes: ['z'] });
    register(d, 'any', { taskTypes: ['w'] });
    expect(offeredTo('z1', 'z')).toEqual(['typed']);
    expect(offeredTo('y1', 'y')).toEqual(['other']);
    expect(offeredTo('x3', 'x')).toEqual([]);
    expect(stateOf(d, workflowId, 'x3')).toBe('queued');
  });

  it('offers orders to an agent of a type and of any type, and orders of type * to agents of any type', () => {
    const { d, workflowId } = setup();
    register(d, 'both', { taskTypes: ['y', '*'] });
    register(d, 'typed', { taskTypes: ['x'] });
    const offeredTo = (id: string, taskType: string) => offers(create(d, workflowId, { id, taskType }).tx.effects).map((o) => o.agentId);
    expect(offeredTo('x1', 'x')).toEqual(['both']);
    expect(offeredTo('x2', 'x')).toEqual(['typed']);
    for (const id of ['x1', 'x2']) {
      accept(d, workflowId, id);
      complete(d, workflowId, id);
    }
    expect(offeredTo('star', '*')).toEqual(['both']);
  });

  it('lets the free agents look for a capped workflow’s opened place least recently assigned first', () => {
    const d = domain();
    const capped = startWorkflow(d, { maxConcurrentAgents: 1 }, 'capped');
    const other = startWorkflow(d, {}, 'other');
    register(d, 'holder');
    create(d, capped, { id: 'c1', taskType: 't' });
    accept(d, capped, 'c1');
    register(d, 'earlier');
    register(d, 'never');
    d.advance(10);
    // `earlier` has had work; `never` has not. Both are free, and the capped workflow is full.
    create(d, other, { id: 'o1', taskType: 't' });
    expect(d.state.workflows.get(other)!.workOrders.o1!.attempt!.agentId).toBe('earlier');
    accept(d, other, 'o1');
    complete(d, other, 'o1');
    create(d, capped, { id: 'c2', taskType: 't' });
    expect(stateOf(d, capped, 'c2')).toBe('queued');
    // The agent that never had work goes first, before the one that leaves.
    const done = complete(d, capped, 'c1');
    expect(offers(done.tx.effects).map((o) => [o.agentId, o.assignment.workOrderId])).toEqual([['never', 'c2']]);
  });

  it('keeps one entry per declared task type however often an agent registers with new ones', () => {
    const { d } = setup();
    for (let i = 0; i < 50; i++) register(d, 'shifty', { taskTypes: [`type${i}`] });
    expect([...d.state.work.available.taskTypes()]).toEqual(['type49']);
    expect(d.state.work.availableAgents()).toEqual(new Set(['shifty']));
  });

  it('puts back an agent dropped from the index when the command that dropped it is rolled back', () => {
    const { d, workflowId } = setup();
    register(d, 'w', { maxConcurrentTasks: 1 });
    const run = (id: string) => {
      const tx = new Transaction<Effect>(d.state);
      applyCommand(
        { state: d.state, tx, ctx: { now: 2_000, monotonicNow: 2_000, newId: (prefix) => `${prefix}_${id}`, settings: SETTINGS } },
        { type: 'workOrder.create', input: CreateWorkOrderInput.parse({ workflowId, id, taskType: 't' }), actor: ADMIN },
      );
      return tx;
    };
    // Its last slot taken, `w` leaves the set of agents that may be free.
    let tx = run('first');
    expect(d.state.work.availableAgents().has('w')).toBe(false);
    tx.rollback();
    expect(d.state.work.availableAgents().has('w')).toBe(true);
    // Draining, it stays until a placement finds it so and drops it.
    d.run('agent.status', { status: 'draining' }, { role: 'agent', name: 'w', agentId: 'w' });
    expect(d.state.work.availableAgents().has('w')).toBe(true);
    tx = run('second');
    expect(d.state.work.availableAgents().has('w')).toBe(false);
    tx.rollback();
    expect(d.state.work.availableAgents().has('w')).toBe(true);
  });

  it('cancels unfinished orders when the workflow is cancelled and tells their agents', () => {
    const { d, workflowId } = setup();
    register(d, 'w');
    create(d, workflowId, { id: 'running', taskType: 't' });
    accept(d, workflowId, 'running');
    create(d, workflowId, { id: 'waiting', taskType: 't' });
    const cancelled = d.run('workflow.cancel', { workflowId, reason: 'user abort' });
    const cancels = cancelled.tx.effects.filter((e) => e.type === 'cancel');
    expect(cancels).toHaveLength(1);
    expect(stateOf(d, workflowId, 'running')).toBe('cancelled');
    expect(stateOf(d, workflowId, 'waiting')).toBe('cancelled');
    expect(d.state.agents!.w!.load).toBe(0);
  });
});
