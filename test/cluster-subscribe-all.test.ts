import { describe, expect, it, onTestFinished } from 'vitest';
import { connectControl, connectMonitor } from '../client-sdk/index.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { ANSWER_INLINE_BYTES } from '../server/transport/patch-stream.ts';
import { FAST_LEASE, leaderAndFollower } from './helpers/cluster.ts';
import { control, monitor, TOKENS } from './helpers/hub.ts';
import { workflowsPastAnswerBound } from './helpers/answer-bound.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

describe.skipIf(!!skip)('subscribeAll past its inline bound on a cluster', () => {
  it('a follower answers within the bound, the rest as transfers it serves, and its mirrors follow the leader', async () => {
    const url = await postgres().newDatabase();
    const { leader, follower } = await leaderAndFollower({ postgres: url, ...FAST_LEASE });
    const client = await control(leader);
    const ids = await workflowsPastAnswerBound(client);
    const last = ids.at(-1)!;
    await untilTrue(() => Object.keys(follower.state.workflows.get(last)?.workOrders ?? {}).length === 4, 'the follower caught up');

    const raw = await monitor(follower);
    const answer = await raw.connection.request('subscribeAll', { versions: {} });
    expect(JSON.stringify(answer).length).toBeLessThanOrEqual(ANSWER_INLINE_BYTES + 100_000);
    expect(answer.docs.filter((s) => s.mode === 'snapshot' && s.transfer).length).toBeGreaterThan(0);
    await raw.close();

    const watcher = await monitor(follower);
    const mirrors = await watcher.subscribeAll();
    for (const id of ids) expect(Object.keys((mirrors.get(id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(4);
    // A change on the leader reaches the follower's mirrors.
    await client.workflow(last).updateProgress('after', 42);
    await untilTrue(() => (mirrors.get(last)?.state as Workflow | undefined)?.progress === 42, 'the change mirrored through the follower');

    // A monitor of the leader moves to the new leader at the failover: its subscribeAll there, holding
    // every workflow, resumes them within the bound, and what changes next reaches it.
    const atLeader = await connectMonitor({ url: [leader.url, follower.url], token: TOKENS.monitor });
    onTestFinished(() => atLeader.close());
    const held = await atLeader.subscribeAll();
    expect(held.get(last)?.version).toBeGreaterThan(0);
    await leader.close();
    await untilTrue(() => follower.cluster().role === 'leader', 'the follower leads', 15_000);
    const next = await connectControl({ url: follower.url, token: TOKENS.admin });
    onTestFinished(() => next.close());
    await next.workflow(ids[1]!).updateProgress('after failover', 77);
    await next.workflow(ids[0]!).updateProgress('after failover', 78);
    await untilTrue(() => (held.get(ids[1]!)?.state as Workflow | undefined)?.progress === 77 && (held.get(ids[0]!)?.state as Workflow | undefined)?.progress === 78, 'the changes mirrored after the failover');
    for (const id of ids) expect(Object.keys((held.get(id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(4);
  }, 30_000);
});
