import { describe, expect, it } from 'vitest';
import { connectAgent, connectControl } from '../client-sdk/index.ts';
import type { RunningHub } from '../server/index.ts';
import { HubUnderTest } from './faults/cluster.ts';
import { clusterInfo, FAST_LEASE } from './helpers/cluster.ts';
import { startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { deferred, untilAnswer, untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

const pooled = (hub: RunningHub, agentId: string) => hub.state.agents?.[agentId];

/** The first leader, and how it goes: a clean stop, or kill -9 (a process, so that nothing of its end is written). */
type FirstLeader = { url: string; replicated: (agentId: string) => Promise<void>; stop: () => Promise<unknown> };

/**
 * An agent runs an order on the first leader, closes with finish, then the leader goes and
 * `second` takes over: the agent's drain must be asked again there, what it declines meanwhile
 * is not held against its agentId, its task completes once, and the next process takes work.
 */
async function finishAcrossFailover(first: FirstLeader, second: RunningHub) {
  const urls = [first.url, second.url];
  const client = await connectControl({ url: urls, token: TOKENS.admin });
  const wf = await client.createWorkflow({ userQuery: 'a deploy during a failover' });
  await wf.start();
  const leaving = await connectAgent({ url: urls, token: TOKENS.agent, agentId: 'fin-1', agentType: 'w', maxConcurrentTasks: 2, logger: null });
  const started = deferred();
  const release = deferred();
  let runs = 0;
  await leaving.onTask('job', async () => {
    runs++;
    started.resolve();
    await release.promise;
    return { result: 'finished by the leaving process' };
  });
  await wf.createWorkOrder({ id: 'running', taskType: 'job' });
  await started.promise;
  const closed = leaving.close({ finish: true });
  await first.replicated('fin-1');
  await untilTrue(() => pooled(second, 'fin-1')?.drainingUntilDisconnect === true, 'the drain replicated');

  // Queued while it drains: offered to it with its free slot once its drain ends with the old connection.
  await wf.createWorkOrder({ id: 'later', taskType: 'job' });
  const offered = deferred();
  leaving.connection.socket.on('assignment', (assignment: { workOrderId: string }) => assignment.workOrderId === 'later' && offered.resolve());
  await first.stop();
  await untilTrue(() => second.cluster().role === 'leader', 'the second node leads', 15_000);
  // Offered at its registration with the new leader, its drain having ended with the old connection.
  await offered.promise;
  await untilTrue(() => pooled(second, 'fin-1')?.drainingUntilDisconnect === true, 'the drain asked again on the new leader');
  await untilTrue(() => second.state.workflows.get(wf.id)!.workOrders.later!.attempt === null, 'the offer declined');
  release.resolve();
  await closed;
  await untilTrue(() => second.state.workflows.get(wf.id)!.workOrders.running!.state === 'completed', 'the running task completed');
  const running = await wf.getWorkOrder('running');
  expect({ attempts: running.attempts, result: running.result, runs }).toEqual({ attempts: 1, result: 'finished by the leaving process', runs: 1 });
  expect((await wf.getWorkOrder('later')).declinedBy).toEqual([]);
  await untilTrue(() => typeof pooled(second, 'fin-1')?.disconnectedSince === 'number', 'the disconnect on the new leader');
  expect(pooled(second, 'fin-1')).toMatchObject({ status: 'idle', stats: { declined: 0 } });

  const next = await connectAgent({ url: urls, token: TOKENS.agent, agentId: 'fin-1', agentType: 'w', logger: null });
  await next.onTask('job', () => ({ result: 'the next process' }));
  await untilTrue(() => second.state.workflows.get(wf.id)!.workOrders.later!.state === 'completed', 'the next process took the order');
  const later = await wf.getWorkOrder('later');
  expect({ result: later.result, declinedBy: later.declinedBy }).toEqual({ result: 'the next process', declinedBy: [] });
  await Promise.all([next.close(), client.close()]);
}

describe.skipIf(!!skip)('an agent finishing (close({ finish: true })) while the leader fails over', () => {
  it('a clean stop of the leader: the drain is asked again on the new one, nothing is held against the agentId', async () => {
    const url = await postgres().newDatabase();
    const first = await startHub({ postgres: url, nodeId: 'n1', ...FAST_LEASE });
    await untilTrue(() => first.cluster().role === 'leader', 'the first node leads');
    const second = await startHub({ postgres: url, nodeId: 'n2', ...FAST_LEASE, graceMs: 60_000 });
    const replicated = (agentId: string) => untilTrue(() => pooled(first, agentId)?.drainingUntilDisconnect === true, 'the drain on the first leader');
    await finishAcrossFailover({ url: first.url, replicated, stop: () => first.close() }, second);
  }, 20_000);

  it('kill -9 of the leader (its agents never recorded gone): the same', async () => {
    const url = await postgres().newDatabase();
    const first = await HubUnderTest.create(tempDir(), { postgres: url, nodeId: 'n1', ...FAST_LEASE, graceMs: 60_000 });
    await first.start();
    await untilAnswer(async () => ((await clusterInfo(first.url))?.role === 'leader' ? true : undefined));
    const second = await startHub({ postgres: url, nodeId: 'n2', ...FAST_LEASE, graceMs: 60_000 });
    await finishAcrossFailover({ url: first.url, replicated: async () => undefined, stop: () => first.crash() }, second);
  }, 20_000);
});
