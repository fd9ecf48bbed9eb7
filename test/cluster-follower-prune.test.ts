import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMonitor, type MonitorClient } from '../client-sdk/index.ts';
import type { RunningHub } from '../server/index.ts';
import type { ResyncNotice } from '../shared/schemas/monitor.ts';
import { FAST_LEASE, leaderAndFollower } from './helpers/cluster.ts';
import { control, startHub, TOKENS } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { deferred, untilTrue } from './helpers/wait.ts';

// The leader's prune deletes archived workflows without a journal record; a follower learns of it
// by reading the archive's headers again. Its monitors must be told as the leader's are: a workflow
// made anew with the id has versions from 1 again, and a version held of the old one must not resume it.

const skip = postgresSkipReason();
const postgres = postgresForFile();

/** Takes the monitor's connection down and keeps it down until `back` is called. */
async function away(watcher: MonitorClient): Promise<{ back: () => void }> {
  const gone = deferred();
  const socket = watcher.connection.socket;
  socket.io.reconnection(false);
  socket.once('disconnect', () => gone.resolve());
  socket.disconnect();
  await gone.promise;
  return {
    back: () => {
      socket.io.reconnection(true);
      socket.connect();
    },
  };
}

/**
 * The leader makes `nightly`, changes it, and completes it; `watcher`, on the follower, mirrors it
 * until the follower has archived it too. Resolves with the watcher's mirror.
 */
async function archivedUnderWatch(leader: RunningHub, follower: RunningHub, watcher: MonitorClient) {
  const old = await (await control(leader)).createWorkflow({ id: 'nightly', userQuery: 'last night' });
  await old.start();
  await old.updateProgress('load', 50);
  await untilTrue(() => follower.state.workflows.get('nightly')?.stages['load'] !== undefined, 'the old one on the follower');
  const mirror = await watcher.subscribe('nightly');
  await old.complete();
  // A follower reads the archived copy before it applies the eviction.
  await untilTrue(() => !follower.state.workflows.has('nightly'), 'archived, seen from the follower');
  await mirror.until((w) => w.status === 'completed', { what: 'the old one completed in the mirror' });
  return mirror;
}

describe.skipIf(!!skip)('a workflow the leader pruned, seen from a follower', () => {
  it('tells the follower’s monitors, and one resuming a version of the pruned workflow gets the new one whole', async () => {
    const url = await postgres().newDatabase();
    const settings = { postgres: url, ...FAST_LEASE, keepFinishedMs: 0, sweepIntervalMs: 20 };
    const { leader, follower } = await leaderAndFollower(settings);
    const client = await control(leader);
    // A dashboard of the follower follows everything; the watcher follows one workflow, and is away at the prune.
    const dashboard = await connectMonitor({ url: follower.url, token: TOKENS.admin });
    const notices: ResyncNotice[] = [];
    dashboard.connection.socket.on('resync', (notice: ResyncNotice) => notices.push(notice));
    await dashboard.subscribeAll();
    const watcher = await connectMonitor({ url: follower.url, token: TOKENS.admin });

    const mirror = await archivedUnderWatch(leader, follower, watcher);

    const watcherAway = await away(watcher);
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual(['nightly']);
    await untilTrue(() => notices.some((notice) => notice.doc === 'nightly' && notice.deleted === true), 'the dashboard told of the deletion', 5_000);
    // Made anew with the same id, and changed past the version the watcher holds of the old one.
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'tonight' });
    await fresh.start();
    for (const progress of [10, 20, 30, 40]) await fresh.updateProgress('load', progress);
    const version = leader.state.versions.get('nightly')!;
    expect(version).toBeGreaterThan(mirror.version);
    await untilTrue(() => follower.state.versions.get('nightly') === version, 'the new one on the follower');

    watcherAway.back();
    await mirror.until((_, at) => at >= version, { what: 'the watcher caught up' });
    const onFollower = JSON.parse(JSON.stringify(follower.state.workflows.get('nightly')));
    expect(mirror.state).toEqual(onFollower);
    // Dropped at the notice (nothing is archived under that id any more), then mirrored anew from its patches.
    await untilTrue(() => dashboard.docs.get('nightly')?.version === version, 'the dashboard mirrors the new one');
    expect(dashboard.docs.get('nightly')?.state).toEqual(onFollower);
    await Promise.all([watcher.close(), dashboard.close()]);
  }, 30_000);

  it('gives a monitor resuming a version of the pruned workflow the new one whole, though the follower missed the notice of the prune', async () => {
    const url = await postgres().newDatabase();
    const proxy = await startTcpProxy(Number(new URL(url).port));
    const settings = { leaseMs: 600, leaseRenewMs: 100, leaseCheckMs: 50, keepFinishedMs: 0, sweepIntervalMs: 20 };
    const leader = await startHub({ ...settings, postgres: url, nodeId: 'n1' });
    await untilTrue(() => leader.cluster().role === 'leader', 'the first node leads');
    // The follower's connections to PostgreSQL go through a proxy that can forget them.
    const follower = await startHub({ ...settings, postgres: proxy.through(url), nodeId: 'n2' });
    onTestFinished(() => proxy.close());
    const client = await control(leader);
    const watcher = await connectMonitor({ url: follower.url, token: TOKENS.admin });
    const mirror = await archivedUnderWatch(leader, follower, watcher);

    const watcherAway = await away(watcher);
    // The follower's listening connection dies without a word: the leader's notice of the prune never reaches it.
    expect(proxy.dropEstablished()).toBeGreaterThan(0);
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual(['nightly']);
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'tonight' });
    await fresh.start();
    // Up to the very version the watcher holds of the old one.
    for (let progress = 1; fresh.version < mirror.version; progress++) await fresh.updateProgress('load', progress);
    await untilTrue(() => follower.state.versions.get('nightly') === mirror.version && follower.state.workflows.has('nightly'), 'the new one on the follower', 10_000);

    // Observes the replies only: the request goes through the real connection.
    const resumed = deferred();
    const request = watcher.connection.request.bind(watcher.connection);
    watcher.connection.request = (async (event: never, payload: never, options?: never) => {
      const reply = (await request(event, payload, options)) as unknown;
      if (event === 'subscribe') resumed.resolve();
      return reply;
    }) as typeof watcher.connection.request;
    watcherAway.back();
    await resumed.promise;
    await fresh.updateProgress('load', 99);
    await mirror.until((_, at) => at >= fresh.version, { what: 'the watcher at the new one’s next version' });
    expect(mirror.state).toEqual(JSON.parse(JSON.stringify(follower.state.workflows.get('nightly'))));
    await watcher.close();
  }, 30_000);
});
