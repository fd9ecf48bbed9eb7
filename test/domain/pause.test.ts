import { describe, expect, it } from 'vitest';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { copyJson } from '../../server/domain/machinery/transaction.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { domain, SETTINGS } from '../helpers/domain.ts';
import { codeOfCall } from '../helpers/errors.ts';

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

function createWorkflow(d: Domain, id: string, start = true): string {
  d.run('workflow.create', CreateWorkflowInput.parse({ id, userQuery: id }));
  if (start) d.run('workflow.start', { workflowId: id });
  return id;
}

const order = (d: Domain, workflowId: string, id: string) => d.state.workflows.get(workflowId)!.workOrders[id]!;
const create = (d: Domain, workflowId: string, id: string, fields: object = {}) =>
  d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id, taskType: 't', ...fields }));
const offersOf = (effects: readonly Effect[]) => effects.flatMap((effect) => (effect.type === 'offer' ? [`${effect.agentId}:${effect.assignment.workOrderId}`] : []));

/** Accepts an offered order and completes it: the agent's slot is free again. */
function complete(d: Domain, workflowId: string, id: string) {
  const { token, agentId } = order(d, workflowId, id).attempt!;
  const ref = { workflowId, workOrderId: id, attemptToken: token };
  d.run('offer.answer', { ...ref, accept: true }, asAgent(agentId));
  return d.run('task.complete', { ...ref, result: null }, asAgent(agentId));
}

/** The workflows whose buckets a free agent of task type `t` walks (BucketHeads). */
function walked(d: Domain): string[] {
  const ids: string[] = [];
  for (let at, next; (next = d.state.work.heads.next(['t'], at)); at = next.head) ids.push(next.bucket.workflowId);
  return ids;
}

describe('workflow.pause and workflow.resume (domain)', () => {
  it('offers none of a paused workflow’s orders, queued or queued later, while another workflow’s go to the free agent; resume offers them in queue order', () => {
    const d = domain();
    const paused = createWorkflow(d, 'wf-paused');
    const other = createWorkflow(d, 'wf-other');
    create(d, paused, 'low', { priority: 'low' });
    create(d, paused, 'high', { priority: 'critical' });
    const { reply, tx } = d.run('workflow.pause', { workflowId: paused, reason: 'API budget' });
    expect(reply).toMatchObject({ status: 'in_progress', paused: { at: expect.any(Number), by: 'unit-test', reason: 'API budget' } });
    expect(tx.effects).toContainEqual({ type: 'workflow.paused', workflowId: paused, by: 'unit-test', reason: 'API budget', queued: 2 });
    expect(walked(d)).toEqual([]);

    create(d, other, 'theirs');
    expect(walked(d)).toEqual([other]);
    const registered = d.register('w', { taskTypes: ['t'], maxConcurrentTasks: 1 });
    expect(offersOf(registered.tx.effects)).toEqual(['w:theirs']);
    const done = complete(d, other, 'theirs');
    expect(offersOf(done.tx.effects)).toEqual([]);
    // Queued while the agent is free: not placed either.
    expect(offersOf(create(d, paused, 'later', { priority: 'high' }).tx.effects)).toEqual([]);
    expect(['low', 'high', 'later'].map((id) => order(d, paused, id).state)).toEqual(['queued', 'queued', 'queued']);

    const resumed = d.run('workflow.resume', { workflowId: paused });
    expect(resumed.reply.paused).toBeNull();
    expect(resumed.tx.effects).toContainEqual(expect.objectContaining({ type: 'workflow.resumed', workflowId: paused, queued: 3 }));
    // To the free agent at once, best first; then the next as its slot frees.
    expect(offersOf(resumed.tx.effects)).toEqual(['w:high']);
    expect(offersOf(complete(d, paused, 'high').tx.effects)).toEqual(['w:later']);
    expect(offersOf(complete(d, paused, 'later').tx.effects)).toEqual(['w:low']);
  });

  it('lets offers and attempts already out finish, and queues a failed attempt’s retry without offering it', () => {
    const d = domain();
    const workflowId = createWorkflow(d, 'wf');
    d.register('w', { taskTypes: ['t'], maxConcurrentTasks: 2 });
    create(d, workflowId, 'running', { maxAttempts: 3 });
    create(d, workflowId, 'offered');
    const { token, agentId } = order(d, workflowId, 'running').attempt!;
    const ref = { workflowId, workOrderId: 'running', attemptToken: token };
    d.run('offer.answer', { ...ref, accept: true }, asAgent(agentId));
    d.run('workflow.pause', { workflowId });

    d.run('task.progress', { ...ref, progress: 50 }, asAgent(agentId));
    complete(d, workflowId, 'offered');
    expect(order(d, workflowId, 'offered').state).toBe('completed');
    d.run('task.fail', { ...ref, error: 'flaky', retryable: true }, asAgent(agentId));
    d.advance(SETTINGS.backoffMaxMs);
    const swept = d.run('hub.sweep', {});
    expect(order(d, workflowId, 'running')).toMatchObject({ state: 'queued', notBefore: null, attempts: 1 });
    expect(offersOf(swept.tx.effects)).toEqual([]);
    expect(offersOf(d.run('workflow.resume', { workflowId }).tx.effects)).toEqual(['w:running']);
  });

  it('keeps the timers running while paused: an offer out lapses back to the queue, not offered again, and a queued order’s overallMs ends it', () => {
    const d = domain();
    const workflowId = createWorkflow(d, 'wf');
    d.register('w', { taskTypes: ['t'] });
    create(d, workflowId, 'offered', { timeouts: { acceptMs: 1_000 } });
    create(d, workflowId, 'waiting', { timeouts: { overallMs: 5_000 } });
    d.run('workflow.pause', { workflowId });
    d.advance(2_000);
    const lapsed = d.run('hub.sweep', {});
    expect(lapsed.reply.expiredOffers).toBe(1);
    expect(offersOf(lapsed.tx.effects)).toEqual([]);
    expect(order(d, workflowId, 'offered')).toMatchObject({ state: 'queued', attempt: null });
    d.advance(4_000);
    expect(d.run('hub.sweep', {}).reply.timedOut).toBe(1);
    expect(order(d, workflowId, 'waiting').state).toBe('failed');
    expect(d.state.workflows.get(workflowId)!.paused).not.toBeNull();
  });

  it('neither marks nor counts a paused workflow’s orders as unservable, and marks them again at resume', () => {
    const d = domain();
    const workflowId = createWorkflow(d, 'wf');
    create(d, workflowId, 'a', { taskType: 'nobody' });
    expect(d.state.workflows.get(workflowId)!.unservable).toBe(1);
    d.run('workflow.pause', { workflowId });
    create(d, workflowId, 'b', { taskType: 'nobody' });
    // An agent coming and going changes its need's verdict: still no marker while paused.
    d.register('n', { taskTypes: ['nobody'] });
    d.run('agent.update', { agentId: 'n', status: 'draining' });
    const workflow = d.state.workflows.get(workflowId)!;
    expect([workflow.unservable, order(d, workflowId, 'a').waiting, order(d, workflowId, 'b').waiting]).toEqual([0, null, null]);

    d.run('workflow.resume', { workflowId });
    expect(workflow.unservable).toBe(2);
    expect(order(d, workflowId, 'b').waiting).toEqual({ reason: 'no_capable_agent', taskType: 'nobody' });
  });

  it('starts a paused pending workflow paused, and a rebuilt index (a restart) keeps it paused', () => {
    const d = domain();
    const workflowId = createWorkflow(d, 'wf', false);
    create(d, workflowId, 'job');
    d.run('workflow.pause', { workflowId, reason: 'not yet' });
    d.run('workflow.start', { workflowId });
    expect(offersOf(d.register('w', { taskTypes: ['t'] }).tx.effects)).toEqual([]);
    expect(order(d, workflowId, 'job').state).toBe('queued');

    const docs = new Map(storedDocs(d.state).map(([key, stored]) => [key, copyJson(stored)]));
    const restarted = domain(stateFromDocs(docs, 5_000));
    restarted.run('hub.recover', {});
    expect(offersOf(restarted.register('w', { taskTypes: ['t'] }).tx.effects)).toEqual([]);
    expect(restarted.state.workflows.get(workflowId)!.paused).toMatchObject({ reason: 'not yet' });
    expect(offersOf(restarted.run('workflow.resume', { workflowId }).tx.effects)).toEqual(['w:job']);
  });

  it('costs the other workflows nothing: a freed agent walks no bucket of 500 paused workflows, and an order one queues looks at none of 500 free agents', () => {
    const d = domain();
    for (let i = 0; i < 500; i++) d.register(`free-${i}`, { taskTypes: ['t'] });
    const paused = Array.from({ length: 500 }, (_, i) => createWorkflow(d, `wf-${i}`));
    for (const workflowId of paused) d.run('workflow.pause', { workflowId });
    // One order each, ready at once: the free agents are not looked at for any of them.
    const work = d.state.work;
    let looked = 0;
    const of = work.available.of.bind(work.available);
    work.available.of = (taskType) => (looked++, of(taskType));
    for (const workflowId of paused) expect(offersOf(create(d, workflowId, 'job').tx.effects)).toEqual([]);
    expect(looked).toBe(0);
    // Their buckets are kept apart from the live ones, whose map a live bucket emptied and filled again churns.
    expect(work.buckets.size).toBe(0);

    // A freed agent looks at none of their buckets (the other workflow has no queued order left).
    const other = createWorkflow(d, 'wf-other');
    create(d, other, 'a');
    let walkedBuckets = 0;
    const next = work.heads.next.bind(work.heads);
    work.heads.next = (taskTypes, after) => {
      const found = next(taskTypes, after);
      if (found) walkedBuckets++;
      return found;
    };
    const done = complete(d, other, 'a');
    expect(offersOf(done.tx.effects)).toEqual([]);
    expect(walkedBuckets).toBe(0);
  });

  it('answers a second pause or a resume of a running workflow with its state, changing nothing; an ended workflow is INVALID_TRANSITION, and ending one clears its pause', () => {
    const d = domain();
    const workflowId = createWorkflow(d, 'wf');
    const first = d.run('workflow.pause', { workflowId, reason: 'first' }).reply;
    const again = d.run('workflow.pause', { workflowId, reason: 'second' });
    expect(again.reply).toEqual(first);
    expect(again.tx.effects).toEqual([]);
    expect(d.state.versions.get(workflowId)).toBe(first.version);

    d.run('workflow.cancel', { workflowId });
    expect(d.state.workflows.get(workflowId)!.paused).toBeNull();
    expect(codeOfCall(() => d.run('workflow.pause', { workflowId }))).toBe('INVALID_TRANSITION');
    expect(codeOfCall(() => d.run('workflow.resume', { workflowId }))).toBe('INVALID_TRANSITION');
    expect(codeOfCall(() => d.run('workflow.pause', { workflowId: 'nope' }))).toBe('NOT_FOUND');

    const running = createWorkflow(d, 'wf-2');
    const version = d.state.versions.get(running);
    const resumed = d.run('workflow.resume', { workflowId: running });
    expect(resumed.reply).toEqual({ version, status: 'in_progress', paused: null });
    expect(resumed.tx.effects).toEqual([]);
  });
});
