import { describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '../client-sdk/index.ts';
import { control, startHub } from './helpers/hub.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { untilOrder } from './helpers/wait.ts';

const LENGTH = 5000;

/** A chain of LENGTH orders of task type `t`, each depending on the one before: c0 ← c1 ← … (createMany takes 1,000 at a time). */
async function chain(wf: WorkflowHandle, first: { overallMs?: number } = {}): Promise<void> {
  for (let start = 0; start < LENGTH; start += 1000) {
    await wf.createWorkOrders(
      Array.from({ length: 1000 }, (_, k) => {
        const i = start + k;
        return { id: `c${i}`, taskType: 't', dependencies: i === 0 ? [] : [`c${i - 1}`], ...(i === 0 && first.overallMs ? { timeouts: { overallMs: first.overallMs } } : {}) };
      }),
    );
  }
}

// An order failing or cancelled fails its blocked dependents (PROTOCOL.md, workOrder.create), and
// they theirs: a chain as long as this one overflowed the stack when that went by recursion.
describe('a long chain of dependent work orders', () => {
  it('can have its first order cancelled, failing the chain', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a long pipeline' });
    await wf.start();
    await chain(wf);

    const cancelled = await wf.cancelWorkOrder('c0', 'not needed').then(
      (order) => order.state,
      (error: Error) => error.message,
    );
    const last = await wf.getWorkOrder(`c${LENGTH - 1}`);
    expect({ cancelled, last: last.state }).toEqual({ cancelled: 'cancelled', last: 'failed' });
  });

  it('takes the failure of the first order from the agent that ran it', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a long pipeline' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'first-step', ['t']);
    await chain(wf);
    const { assignment } = await worker.nextOffer();
    expect(assignment.workOrderId).toBe('c0');
    const reply = await worker.request('task.fail', { ...refOf(assignment), error: 'bad input', retryable: false });
    expect(reply).toEqual({ ok: true, data: expect.objectContaining({ state: 'failed' }) });
    worker.close();
  });

  it("keeps the hub's timers going for other workflows once the first order times out", async () => {
    const hub = await startHub({ sweepIntervalMs: 20 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a long pipeline' });
    await wf.start();
    await chain(wf, { overallMs: 1000 });
    // Another workflow's order, which nobody can take, times out after the chain's first order.
    const other = await client.createWorkflow({ userQuery: 'unrelated' });
    await other.start();
    await other.createWorkOrder({ id: 'probe', taskType: 'nobody', timeouts: { overallMs: 2000 } });
    const probe = await untilOrder(hub, other.id, 'probe', 'failed');
    expect(probe.error).toBe('overall timeout of 2000 ms exceeded');
  });
});
