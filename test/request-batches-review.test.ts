import { describe, expect, it } from 'vitest';
import { HubError } from '../shared/errors.ts';
import { agent, control, startHub } from './helpers/hub.ts';

/** What a request settled with: its value, or the error it rejected with; 'pending' if it has not settled by the next turn of the event loop. */
async function settledByNextTurn(request: Promise<unknown>): Promise<unknown> {
  const outcome = request.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  return Promise.race([outcome, new Promise((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('an agent connection batching its requests (review)', () => {
  it('fails a request still queued for its batch at once with DISCONNECTED when the connection is closed', async () => {
    const hub = await startHub();
    const worker = await agent(hub, { agentId: 'closing', agentType: 'w', logger: null });
    // Made in the same turn as close(): queued for the batch of this turn, not sent yet.
    const pending = worker.connection.request('agent.heartbeat', { attemptTokens: [] }, { timeoutMs: 600_000 });
    await worker.connection.close();
    const outcome = await settledByNextTurn(pending);
    expect(outcome).not.toBe('pending');
    expect((outcome as { error: unknown }).error).toBeInstanceOf(HubError);
    expect((outcome as { error: HubError }).error.code).toBe('DISCONNECTED');
  });

  it('never sends a request queued when the connection dropped ahead of the re-registration on the next connection', async () => {
    const hub = await startHub();
    const worker = await agent(hub, { agentId: 'dropping', agentType: 'w', logger: null });
    const sent: string[] = [];
    worker.connection.socket.onAnyOutgoing((event: string, payload: unknown) => {
      sent.push(event === 'batch' ? `batch(${(payload as Array<[string]>).map(([e]) => e).join(',')})` : event);
    });
    const reregistered = new Promise<void>((resolve) => worker.connection.socket.once('connect', () => resolve()));
    // As the existing control test does: the request is made, then the transport goes away in the same turn.
    const pending = worker.connection.request('agent.status', { note: 'queued at the drop' });
    worker.connection.socket.io.engine.close();
    const outcome = await pending.then(
      () => 'answered',
      (error: HubError) => error.code,
    );
    await reregistered;
    // Before batching it failed with DISCONNECTED (the connection dropped before the answer); it must
    // not sit in socket.io's buffer and go out on the next connection before agent.register.
    expect(outcome).toBe('DISCONNECTED');
    expect(sent[0]).not.toBe('agent.status');
  });

  it('keeps the order of requests when a batch that cannot be encoded is sent again one by one', async () => {
    const hub = await startHub();
    const admin = await control(hub);
    const worker = await agent(hub, { agentId: 'ordered', agentType: 'w', logger: null });
    const requests = await new Promise<Promise<unknown>[]>((resolve) => {
      // A timer's callback, as an agent's own code runs from (not a promise continuation).
      setImmediate(() => {
        const first = worker.connection.request('agent.status', { note: 'first' });
        const bad = worker.connection.request('agent.status', { note: 10n as unknown as string });
        // Another timeout: the batch of the two before goes at once, and this one is queued for the next.
        const third = worker.connection.request('agent.status', { note: 'third' }, { timeoutMs: 60_000 });
        resolve([first, bad, third]);
      });
    });
    const [first, bad, third] = (await Promise.allSettled(requests)) as [PromiseSettledResult<unknown>, PromiseSettledResult<unknown>, PromiseSettledResult<unknown>];
    expect(first.status).toBe('fulfilled');
    expect(bad).toMatchObject({ status: 'rejected', reason: expect.any(TypeError) });
    expect(third.status).toBe('fulfilled');
    // The request made last is applied last.
    const [listed] = (await admin.listAgents()).filter((a) => a.id === 'ordered');
    expect(listed?.note).toBe('third');
  });
});
