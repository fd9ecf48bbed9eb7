import { describe, expect, it, onTestFinished } from 'vitest';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { agent, control, monitor, tempDir } from '../helpers/hub.ts';
import { rawAgent } from '../helpers/raw-agent.ts';
import { deferred } from '../helpers/wait.ts';
import { HubUnderTest } from './cluster.ts';

const LEASE_MS = 1500;
/** Longer than the lease: the hub's clock jumps past it while the agent goes on beating. */
const PAUSE_MS = 4000;

describe('a hub paused past a lease (a VM paused, SIGSTOP, a long stall)', () => {
  it('reads the heartbeats that arrived meanwhile before it judges leases: the agent that kept beating keeps its work', async () => {
    const hub = await HubUnderTest.create(tempDir(), { sweepIntervalMs: 100 });
    await hub.start();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'paused', userQuery: 'a hub paused past a lease' });
    await wf.start();
    const started = deferred();
    const release = deferred();
    const worker = await agent(hub, { agentId: 'worker', agentType: 'w' });
    await worker.onTask('job', async () => {
      started.resolve();
      await release.promise;
      return { result: 'done' };
    });
    // An agent that never answers: the sweep that takes its offer back shows the first sweep after the pause ran.
    const mute = await rawAgent(hub.url, 'mute', ['other']);
    onTestFinished(() => void mute.close());
    await wf.createWorkOrders([
      { id: 'job', taskType: 'job', timeouts: { leaseMs: LEASE_MS } },
      { id: 'unanswered', taskType: 'other', timeouts: { acceptMs: 500 } },
    ]);
    await started.promise;
    await mute.nextOffer();
    const mirror = await (await monitor(hub)).subscribe<Workflow>(wf.id);

    hub.current!.child.kill('SIGSTOP');
    // The pause itself is the stimulus: the worker's SDK keeps sending heartbeats into the hub's socket.
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
    hub.current!.child.kill('SIGCONT');

    await mirror.until((w) => w.workOrders.unanswered!.state === 'queued', { what: 'the unanswered offer withdrawn by a sweep after the pause' });
    expect(mirror.state!.workOrders.job).toMatchObject({ state: 'running', attempts: 1, history: [] });
    release.resolve();
    const done = await mirror.until((w) => w.workOrders.job!.state === 'completed', { what: 'the job completed' });
    expect(done.workOrders.job!.history.map((h) => [h.agentId, h.outcome])).toEqual([['worker', 'completed']]);
  }, 30_000);
});
