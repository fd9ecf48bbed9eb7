import { describe, expect, it } from 'vitest';
import { agent, control, startHub } from './helpers/hub.ts';
import { untilWorkflow } from './helpers/wait.ts';

describe('an SDK agent on a rate-limited connection', () => {
  it('sends a progress update the hub refused as RATE_LIMITED again, without failing the task', async () => {
    // Three requests at once, then ten a second: the agent's registrations take two, its progress the rest.
    const hub = await startHub({ rateLimit: { perSecond: 10, burst: 3 } });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'rate-limited progress' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'w', agentType: 'w', logger: null });
    await worker.onTask('t', async (_task, ctx) => {
      for (const percent of [10, 20, 30, 40]) await ctx.progress(percent, `at ${percent}`);
      return { result: 'done' };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1 });
    const ended = await untilWorkflow(hub, wf.id, (w) => ['completed', 'failed'].includes(w.workOrders.job?.state ?? ''), 'the order ended');
    const order = ended.workOrders.job!;
    expect([order.state, order.attempts, order.result, order.progress]).toEqual(['completed', 1, 'done', 100]);
  });
});
