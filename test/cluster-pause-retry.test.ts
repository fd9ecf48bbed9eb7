import { describe, expect, it } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { FAST_LEASE, leaderAndFollower } from './helpers/cluster.ts';
import { TOKENS } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { untilTrue } from './helpers/wait.ts';

// A pause and a failed order are state in the journal, but what follows from them (which buckets
// free agents walk, whether an order may be offered) is the leader's index: a new leader must
// build it from what the old one wrote.

const skip = postgresSkipReason();
const postgres = postgresForFile();

describe.skipIf(!!skip)('pause, resume and retry across a leader failover', () => {
  it('a workflow paused under the old leader stays paused under the new one, which resumes it and retries an order that failed under the old one', async () => {
    const url = await postgres().newDatabase();
    const settings = { postgres: url, ...FAST_LEASE, graceMs: 60_000 };
    const { leader: first, follower: second } = await leaderAndFollower(settings);
    const client = await connectControl({ url: [first.url, second.url], token: TOKENS.admin });
    const paused = await client.createWorkflow({ id: 'paused', userQuery: 'held over a failover' });
    await paused.start();
    await paused.createWorkOrder({ id: 'held', taskType: 't' });
    await paused.pause('maintenance');
    const failing = await client.createWorkflow({ id: 'failing', userQuery: 'a failure, retried after a failover' });
    await failing.start();
    await failing.createWorkOrder({ id: 'job', taskType: 'u', maxAttempts: 1 });
    const worker = await rawAgent(first.url, 'w1', ['u']);
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    expect((await worker.request('task.fail', { ...refOf(offer.assignment), error: 'disk full' })).ok).toBe(true);
    const replicated = () => second.state.workflows.get('failing')?.workOrders['job']?.state === 'failed' && second.state.workflows.get('paused')?.paused !== null;
    await untilTrue(replicated, 'the pause and the failure replicated');
    worker.close();
    await first.close();
    await untilTrue(() => second.cluster().role === 'leader', 'the second node leads', 15_000);

    // Queued before the failover and made after it: neither is offered while paused.
    await paused.createWorkOrder({ id: 'later', taskType: 't' });
    const other = await client.createWorkflow({ id: 'other', userQuery: 'not paused' });
    await other.start();
    const agent = await rawAgent(second.url, 'w2', ['t', 'u']);
    await other.createWorkOrder({ id: 'free', taskType: 't' });
    // One slot: had a paused order been offerable, it would have gone at registration, before `free` existed.
    const freeOffer = await agent.nextOffer();
    expect(freeOffer.assignment.workOrderId).toBe('free');
    freeOffer.ack({ accept: true });
    expect((await agent.request('task.complete', { ...refOf(freeOffer.assignment), result: 'ok' })).ok).toBe(true);
    expect(second.state.workflows.get('paused')!.paused).toMatchObject({ reason: 'maintenance' });

    await failing.retryWorkOrder('job');
    const retried = await agent.nextOffer();
    expect(retried.assignment).toMatchObject({ workflowId: 'failing', workOrderId: 'job' });
    retried.ack({ accept: true });
    expect((await agent.request('task.complete', { ...refOf(retried.assignment), result: 'again' })).ok).toBe(true);
    expect(second.state.workflows.get('failing')!.workOrders['job']).toMatchObject({ state: 'completed', attempts: 2, retried: { attempts: 1 } });

    await paused.resume();
    const resumed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const next = await agent.nextOffer();
      resumed.push(next.assignment.workOrderId);
      next.ack({ accept: true });
      expect((await agent.request('task.complete', { ...refOf(next.assignment), result: 'resumed' })).ok).toBe(true);
    }
    // In queue order, once the pause is over.
    expect(resumed).toEqual(['held', 'later']);
    expect(second.state.workflows.get('paused')!.workOrderCounts).toMatchObject({ completed: 2, queued: 0 });
    agent.close();
    await client.close();
  }, 40_000);
});
