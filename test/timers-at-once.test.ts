import { describe, expect, it } from 'vitest';
import { TIMERS_PER_SWEEP } from '../server/domain/work/sweep.ts';
import { control, startHub } from './helpers/hub.ts';
import { untilTrue } from './helpers/wait.ts';

const ORDERS = 2_500;

describe('timers that fall due at once', () => {
  it('end the overall timeouts of 2,500 orders queued together in several sweeps, not in one command', async () => {
    const hub = await startHub({ sweepIntervalMs: 20 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'everything times out together' });
    for (let first = 0; first < ORDERS; first += 1000) {
      await wf.createWorkOrders(Array.from({ length: Math.min(1000, ORDERS - first) }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this', timeouts: { overallMs: 1000 } })));
    }
    // Queued by one command: their overall timeouts all start, and end, at the same moment.
    await wf.start();
    const started = hub.state.versions.get(wf.id)!;
    await untilTrue(() => hub.state.workflows.get(wf.id)!.workOrderCounts.failed === ORDERS, 'every order timed out', 20_000);
    // One version per command that changed the workflow: each sweep ended at most TIMERS_PER_SWEEP of them.
    expect(hub.state.versions.get(wf.id)! - started).toBe(Math.ceil(ORDERS / TIMERS_PER_SWEEP));
    expect((await wf.summary()).workOrderCounts?.failed).toBe(ORDERS);
  }, 30_000);
});
