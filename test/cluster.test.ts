import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAgent, connectControl, connectMonitor } from '../client-sdk/index.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { ClusterUnderTest, clusterInfo } from './helpers/cluster.ts';
import { TOKENS } from './helpers/hub.ts';
import { postgresSkipReason, startPostgres, type PostgresServer } from './helpers/postgres.ts';

const skip = postgresSkipReason();

describe.skipIf(!!skip)('a cluster of three nodes on PostgreSQL', () => {
  let postgres: PostgresServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => {
    await postgres?.destroy();
  });

  it('takes writes through any node, and a follower serves mirrors and reports equal to the leader at the same version', async () => {
    const cluster = await ClusterUnderTest.start(await postgres.newDatabase(), 3);
    const leader = await cluster.leader();
    const followers = cluster.others(leader);
    expect((await clusterInfo(followers[0]!.url))).toMatchObject({ role: 'follower', leader: { nodeId: (await clusterInfo(leader.url))!.nodeId, url: leader.url } });

    // Each control client is given a different node first: followers send it to the leader.
    const controls = await Promise.all(cluster.nodes.map((node) => connectControl({ url: [node.url, ...cluster.others(node).map((n) => n.url)], token: TOKENS.admin })));
    const workflows = await Promise.all(controls.map((control, i) => control.createWorkflow({ userQuery: `through node ${i + 1}` })));
    for (const wf of workflows) await wf.start();
    const worker = await connectAgent({ url: [followers[1]!.url, ...cluster.urls], token: TOKENS.agent, agentId: 'w1', agentType: 'worker' });
    await worker.onTask('square', (task) => ({ result: (task.input as number) ** 2 }));

    const watcher = await connectMonitor({ url: followers[0]!.url, token: TOKENS.monitor });
    const mirror = await watcher.subscribe<Workflow>(workflows[0]!.id);
    const atLeader = await (await connectMonitor({ url: leader.url, token: TOKENS.monitor })).subscribe<Workflow>(workflows[0]!.id);
    await workflows[0]!.createWorkOrders([1, 2, 3, 4, 5].map((n) => ({ id: `sq${n}`, taskType: 'square', input: n })));
    await workflows[0]!.updateProgress('squares', 50);
    await atLeader.until((wf) => Object.values(wf.workOrders).every((o) => o.state === 'completed') && wf.progress === 50, { what: 'every order done on the leader' });
    const version = atLeader.version;
    await mirror.until((_, v) => v >= version, { what: 'the follower mirror at the leader version' });
    expect(mirror.version).toBe(version);
    expect(mirror.state).toEqual(atLeader.state);
    expect(Object.values(mirror.state!.workOrders).map((o) => o.result)).toEqual([1, 4, 9, 16, 25]);

    for (const format of ['json', 'md', 'html']) {
      const get = (url: string) => fetch(`${url}/api/workflows/${workflows[0]!.id}/report.${format}`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
      const [fromLeader, fromFollower] = await Promise.all([get(leader.url), get(followers[0]!.url)]);
      expect(fromFollower.status).toBe(200);
      expect(fromFollower.headers.get('x-switchboard-version')).toBe(String(version));
      expect(fromLeader.headers.get('x-switchboard-version')).toBe(String(version));
      expect(await fromFollower.text()).toBe(await fromLeader.text());
    }
    await Promise.all([...controls.map((c) => c.close()), worker.close(), watcher.close()]);
  });
});
