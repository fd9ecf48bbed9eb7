import { describe, expect, it } from 'vitest';
import { control, startHub } from './helpers/hub.ts';

/**
 * Makes the next request of a client's connection land while its answer is lost: the connection
 * drops right after the request is written, so the SDK sees DISCONNECTED for a change the hub made.
 * Returns the count of requests the client made since.
 */
function loseNextAnswer(client: Awaited<ReturnType<typeof control>>): () => number {
  const connection = client.connection;
  const request = connection.request.bind(connection);
  let sent = 0;
  connection.request = ((...args: Parameters<typeof request>) => {
    sent++;
    return request(...args);
  }) as typeof request;
  let armed = true;
  // At the packet, not the call: a request may wait a tick to go out with the others of its turn.
  connection.socket.onAnyOutgoing(() => {
    if (!armed) return;
    armed = false;
    queueMicrotask(() => connection.socket.io.engine.close());
  });
  return () => sent;
}

describe('creates that carry the client id', () => {
  it('are sent again after a lost answer, and the earlier create that landed is reported as the success', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'retried creates' });
    const sent = loseNextAnswer(client);
    const order = await wf.createWorkOrder({ id: 'once', taskType: 'job', input: { n: 1 } });
    expect(sent()).toBe(3);
    expect(order).toMatchObject({ id: 'once', taskType: 'job', input: { n: 1 } });
    expect(Object.keys((await wf.get()).workOrders)).toEqual(['once']);

    loseNextAnswer(client);
    const again = await client.createWorkflow({ id: 'wf-once', userQuery: 'also once' });
    expect(again.id).toBe('wf-once');
    expect(hub.state.workflows.get('wf-once')?.userQuery).toBe('also once');
  });

  it('still fail with CONFLICT when the id was taken before', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'taken ids' });
    await wf.createWorkOrder({ id: 'taken', taskType: 'job' });
    await expect(wf.createWorkOrder({ id: 'taken', taskType: 'job' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});
