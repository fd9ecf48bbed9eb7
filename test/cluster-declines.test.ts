import { describe, expect, it } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { FAST_LEASE, leaderAndFollower } from './helpers/cluster.ts';
import { TOKENS } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { rawAgent } from './helpers/raw-agent.ts';
import { untilTrue } from './helpers/wait.ts';

// An order every agent declined is offered again after declinedRetryMs, a timer of the leader's
// sweep that followers do not run: a new leader starts the timers of the orders marked under the old one.

const skip = postgresSkipReason();
const postgres = postgresForFile();

describe.skipIf(!!skip)('forgotten declines across a leader failover', () => {
  it('a new leader offers an order marked all_declined under the old one again once its period is over', async () => {
    const url = await postgres().newDatabase();
    const settings = { postgres: url, ...FAST_LEASE, graceMs: 60_000, declinedRetryMs: 2_500 };
    const { leader: first, follower: second } = await leaderAndFollower(settings);
    const client = await connectControl({ url: [first.url, second.url], token: TOKENS.admin });
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'one GPU worker, a failover' });
    await wf.start();
    const worker = await rawAgent(first.url, 'gpu', ['t']);
    await wf.createWorkOrder({ id: 'frame', taskType: 't' });
    (await worker.nextOffer()).ack({ accept: false, reason: 'not now' });
    const marked = () => second.state.workflows.get('wf')?.workOrders['frame']?.waiting;
    await untilTrue(() => marked()?.reason === 'all_declined', 'the mark replicated');
    worker.close();
    await first.close();
    await untilTrue(() => second.cluster().role === 'leader', 'the second node leads', 15_000);
    // Still marked as the old leader left it: only the new leader's timer can offer it again.
    expect(second.state.workflows.get('wf')!.workOrders['frame']).toMatchObject({ declinedBy: ['gpu'], waiting: { reason: 'all_declined' } });
    const again = await rawAgent(second.url, 'gpu', ['t']);
    const offer = await again.nextOffer();
    expect(offer.assignment.workOrderId).toBe('frame');
    // Only its forgotten declines bring it back to the agent that declined it (its registration does not).
    expect(second.state.workflows.get('wf')!.workOrders['frame']).toMatchObject({ declinedBy: [], waiting: null });
    again.close();
    await client.close();
  }, 30_000);
});
