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

describe('timers of orders that ended before them', () => {
  it('leave with their orders, so they do not hold back a timeout due behind them: the first sweep ends that order', async () => {
    const T0 = 1_767_261_600_000;
    const clock = { now: T0 };
    // The background sweep is left to its longest interval: the test sweeps, as the hub does, while `more` says so.
    const hub = await startHub({ sweepIntervalMs: 60_000 }, { clock: () => clock.now });
    const sweep = () => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });
    const client = await control(hub);
    const ended = await client.createWorkflow({ id: 'ended', userQuery: 'a big workflow cancelled before its timeouts' });
    for (const first of [0, 1000]) {
      await ended.createWorkOrders(Array.from({ length: first === 0 ? 1000 : 1 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this', timeouts: { overallMs: 1000 } })));
    }
    await ended.start();
    await ended.cancel();
    clock.now = T0 + 1;
    const live = await client.createWorkflow({ id: 'live', userQuery: 'one order that times out' });
    await live.createWorkOrder({ id: 'late', taskType: 'nobody-serves-this', timeouts: { overallMs: 1000 } });
    await live.start();

    clock.now = T0 + 5_000;
    // The 1,001 timeouts of the cancelled orders left with them (TimerQueue): nothing but `late` is due.
    expect(await sweep()).toMatchObject({ timedOut: 1, more: false });
    expect(hub.state.workflows.get('live')!.workOrders['late']).toMatchObject({ state: 'failed', error: 'overall timeout of 1000 ms exceeded' });
  });
});
