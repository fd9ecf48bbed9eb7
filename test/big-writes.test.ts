import { describe, expect, it } from 'vitest';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { control, monitor, startHub } from './helpers/hub.ts';

/** Enough orders that a cancel writes more ops than a function call takes arguments (some 120,000). */
const ORDERS = 20_000;

describe('big writes reach their followers', () => {
  it('sends a monitor the cancel of a workflow of 20,000 orders, and one resuming from before it catches up', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'big, then cancelled' });
    await wf.start();
    for (let first = 0; first < ORDERS; first += 1000) {
      await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this' })));
    }
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<Workflow>(wf.id);
    const before = { version: mirror.version, epoch: (await watcher.connection.request('subscribe', { doc: wf.id })).epoch };

    await wf.cancel('done with it');
    // The broadcast joins the cancel's ops into one message; it used to throw RangeError there, in a timer, ending the hub.
    await mirror.until((w) => w.workOrderCounts.cancelled === ORDERS, { what: 'every order cancelled', timeoutMs: 20_000 });
    expect(mirror.state).toEqual(structuredClone(hub.state.workflows.get(wf.id)));

    // Resuming from before the cancel joins the missed ops the same way (then sends the snapshot: they are too many).
    const late = await monitor(hub);
    const resumed = await late.connection.request('subscribe', { doc: wf.id, ...before });
    expect(resumed.mode).toBe('snapshot');
    expect((await wf.summary()).workOrderCounts?.cancelled).toBe(ORDERS);
  }, 60_000);
});
