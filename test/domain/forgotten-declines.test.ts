import { describe, expect, it } from 'vitest';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { copyJson } from '../../server/domain/machinery/transaction.ts';
import { domain, SETTINGS } from '../helpers/domain.ts';

// An order every capable agent declined (or let lapse) has its declines forgotten after
// declinedRetryMs (60 s in SETTINGS) and is offered again: the sweep's timer, kept across a restart.

type Domain = ReturnType<typeof domain>;
const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });
const PERIOD = SETTINGS.declinedRetryMs!;

/** A started workflow with one order `frame` of task type `gpu`, offered to the one agent `gpu` there is. */
function offeredToTheOneAgent(d: Domain): string {
  d.register('gpu', { taskTypes: ['gpu'] });
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'render' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'frame', taskType: 'gpu' }));
  return workflowId;
}

const frame = (d: Domain, workflowId: string) => d.state.workflows.get(workflowId)!.workOrders['frame']!;
const unservable = (d: Domain, workflowId: string) => d.state.workflows.get(workflowId)!.unservable ?? 0;

/** The agent holding the offer of `frame` declines it. */
function decline(d: Domain, workflowId: string): void {
  const attempt = frame(d, workflowId).attempt!;
  d.run('offer.answer', { workflowId, workOrderId: 'frame', attemptToken: attempt.token, accept: false }, asAgent(attempt.agentId));
}

/** Moves the clock and sweeps; returns how many orders had their declines forgotten. */
function sweepAfter(d: Domain, ms: number): number {
  d.advance(ms);
  return d.run('hub.sweep', {}).reply.declinesForgotten;
}

describe('declines forgotten after declinedRetryMs (domain)', () => {
  it('offers an order its one agent declined to that agent again once the period is over, clearing its mark and count', () => {
    const d = domain();
    const workflowId = offeredToTheOneAgent(d);
    decline(d, workflowId);
    // The domain's clock starts at 1,000.
    expect(frame(d, workflowId)).toMatchObject({ state: 'queued', declinedBy: ['gpu'], waiting: { reason: 'all_declined', retryAt: 1_000 + PERIOD } });
    expect(unservable(d, workflowId)).toBe(1);

    expect(sweepAfter(d, PERIOD - 1)).toBe(0);
    expect(frame(d, workflowId)).toMatchObject({ state: 'queued', declinedBy: ['gpu'] });
    expect(sweepAfter(d, 1)).toBe(1);
    expect(frame(d, workflowId)).toMatchObject({ state: 'offered', declinedBy: [], waiting: null, attempt: { agentId: 'gpu', number: 1 } });
    expect(unservable(d, workflowId)).toBe(0);
    expect(d.state.workflows.get(workflowId)!.workOrderCounts).toMatchObject({ queued: 0, offered: 1 });
  });

  it('starts a new period at each decline, and one from the last marking when the mark was lifted meanwhile', () => {
    const d = domain();
    const workflowId = offeredToTheOneAgent(d);
    decline(d, workflowId);
    sweepAfter(d, PERIOD);
    decline(d, workflowId);
    expect(frame(d, workflowId).waiting).toEqual({ reason: 'all_declined', retryAt: 1_000 + 2 * PERIOD });

    // The agent drains (nobody can take it), then takes work again half a period later: marked anew from then.
    d.run('agent.status', { status: 'draining' }, asAgent('gpu'));
    expect(frame(d, workflowId).waiting).toEqual({ reason: 'no_capable_agent', taskType: 'gpu' });
    d.advance(PERIOD / 2);
    d.run('agent.status', { status: 'active' }, asAgent('gpu'));
    const retryAt = 1_000 + PERIOD + PERIOD / 2 + PERIOD;
    expect(frame(d, workflowId).waiting).toEqual({ reason: 'all_declined', retryAt });
    // The timer of the first marking is stale.
    expect(sweepAfter(d, PERIOD / 2)).toBe(0);
    expect(frame(d, workflowId).state).toBe('queued');
    expect(sweepAfter(d, PERIOD / 2)).toBe(1);
    expect(frame(d, workflowId)).toMatchObject({ state: 'offered', attempt: { agentId: 'gpu' } });
  });

  it('does nothing at the end of the period of an order another agent took and completed meanwhile', () => {
    const d = domain();
    const workflowId = offeredToTheOneAgent(d);
    decline(d, workflowId);
    d.register('other', { taskTypes: ['gpu'] });
    const attempt = frame(d, workflowId).attempt!;
    expect(attempt.agentId).toBe('other');
    const ref = { workflowId, workOrderId: 'frame', attemptToken: attempt.token };
    d.run('offer.answer', { ...ref, accept: true }, asAgent('other'));
    d.run('task.complete', { ...ref, result: 'rendered' }, asAgent('other'));
    expect(sweepAfter(d, PERIOD)).toBe(0);
    expect(frame(d, workflowId)).toMatchObject({ state: 'completed', declinedBy: ['gpu'], waiting: null });
    expect(unservable(d, workflowId)).toBe(0);
  });

  it.each([null, 0])('never forgets declines with declinedRetryMs %s, as an operator retry alone did', (declinedRetryMs) => {
    const d = domain(undefined, { ...SETTINGS, declinedRetryMs });
    const workflowId = offeredToTheOneAgent(d);
    decline(d, workflowId);
    expect(frame(d, workflowId).waiting).toEqual({ reason: 'all_declined' });
    expect(sweepAfter(d, 100 * PERIOD)).toBe(0);
    expect(frame(d, workflowId)).toMatchObject({ state: 'queued', declinedBy: ['gpu'] });
    expect(unservable(d, workflowId)).toBe(1);
  });

  it('waits the rest of the period after a restart, and follows the setting the hub restarts with', () => {
    const d = domain();
    const workflowId = offeredToTheOneAgent(d);
    decline(d, workflowId);
    const docs = () => new Map(storedDocs(d.state).map(([key, stored]) => [key, copyJson(stored)]));

    // Down for 20 s: 40 s are left.
    const restarted = domain(stateFromDocs(docs(), 1_000 + 20_000));
    restarted.advance(20_000);
    expect(sweepAfter(restarted, PERIOD - 20_000 - 1)).toBe(0);
    expect(sweepAfter(restarted, 1)).toBe(1);
    expect(frame(restarted, workflowId)).toMatchObject({ state: 'queued', declinedBy: [], waiting: null });

    // Restarted with forgetting off: the mark loses its retryAt, and its timer does nothing.
    const never = domain(stateFromDocs(docs(), 1_000), { ...SETTINGS, declinedRetryMs: null });
    never.run('hub.sweep', {});
    expect(frame(never, workflowId).waiting).toEqual({ reason: 'all_declined' });
    expect(sweepAfter(never, PERIOD)).toBe(0);
    expect(unservable(never, workflowId)).toBe(1);

    // Restarted with it on again: a period from then.
    const again = domain(stateFromDocs(new Map(storedDocs(never.state).map(([key, stored]) => [key, copyJson(stored)])), 1_000));
    again.run('hub.sweep', {});
    expect(frame(again, workflowId).waiting).toEqual({ reason: 'all_declined', retryAt: 1_000 + PERIOD });
    expect(sweepAfter(again, PERIOD)).toBe(1);
    expect(unservable(again, workflowId)).toBe(0);
  });
});
