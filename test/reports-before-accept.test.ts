import { describe, expect, it } from 'vitest';
import { rawAgentOnStartedWorkflow, refOf } from './helpers/raw-agent.ts';

const setup = () => rawAgentOnStartedWorkflow('eager', 'reports before the accept');

// What the hub records for each report before the accept (and what it still refuses, with which
// code): test/domain/attempts.test.ts. Here: the same over a socket, with the ack sent late.
describe('an agent that reports before its accept ack', () => {
  it('runs the order when progress arrives before the accept, and the accept that follows changes nothing', async () => {
    const { wf, worker } = await setup();
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const { assignment, ack } = await worker.nextOffer();
    const ref = refOf(assignment);

    expect(await worker.request('task.progress', { ...ref, progress: 30, message: 'under way' })).toMatchObject({ ok: true });
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'running', attempts: 1, progress: 30, message: 'under way' });

    ack({ accept: true });
    // Requests on one socket are handled in order: once this one is answered, so is the ack before it.
    expect(await worker.request('agent.heartbeat', { attemptTokens: [ref.attemptToken] })).toEqual({ ok: true, data: { renewed: [ref.attemptToken], lost: [] } });
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'running', attempts: 1, progress: 30, declinedBy: [] });

    expect(await worker.request('task.complete', { ...ref, result: 'done' })).toMatchObject({ ok: true, data: { state: 'completed' } });
    worker.close();
  });

  it('completes the order when the completion arrives before the accept, once, and the late accept is harmless', async () => {
    const { wf, worker } = await setup();
    await wf.createWorkOrder({ id: 'quick', taskType: 't' });
    const { assignment, ack } = await worker.nextOffer();
    const ref = refOf(assignment);

    expect(await worker.request('task.complete', { ...ref, result: { rows: 3 } })).toMatchObject({ ok: true, data: { state: 'completed' } });
    ack({ accept: true });
    // A second completion with the same token is refused as ever; it also orders the ack before it.
    expect(await worker.request('task.complete', { ...ref, result: { rows: 4 } })).toMatchObject({ ok: false, error: { code: 'STALE_ATTEMPT' } });

    // Acknowledged means committed: nothing to wait for.
    expect(await wf.getWorkOrder('quick')).toMatchObject({ state: 'completed', attempts: 1, result: { rows: 3 }, declinedBy: [] });
    worker.close();
  });
});
