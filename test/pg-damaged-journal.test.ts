import pg from 'pg';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectControl, connectMonitor } from '../client-sdk/index.ts';
import { LeaseTable } from '../server/cluster/lease.ts';
import type { ClusterInfo } from '../server/index.ts';
import { compactPartition } from '../server/store/postgres/pg-compaction.ts';
import { PostgresStore } from '../server/store/postgres/postgres-store.ts';
import { ClusterUnderTest, clusterInfo } from './helpers/cluster.ts';
import { control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { deferred, untilAnswer, untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();

/** One PostgreSQL for the file: each test takes a database of its own. */
const postgres = postgresForFile();

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const occurrences = (text: string, part: string) => text.split(part).length - 1;

afterEach(() => {
  vi.restoreAllMocks();
});

/** A client on the cluster's database, ended when the test ends, and the journal's newest seq. */
async function journalClient(url: string): Promise<{ db: pg.Client; lastSeq: () => Promise<number> }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  onTestFinished(() => db.end());
  return { db, lastSeq: async () => Number((await db.query<{ seq: string }>('SELECT max(seq) AS seq FROM sb_journal')).rows[0]!.seq) };
}

describe.skipIf(!!skip)('a damaged journal row in PostgreSQL', () => {

  it('is named once by each follower, which then never takes the lease over it; a start is refused naming it, --truncate-damaged-journal is the way out, and a leader frozen meanwhile loads again', async () => {
    const database = await postgres().newDatabase();
    const cluster = await ClusterUnderTest.start(database, 3);
    const leader = await cluster.leader();
    const followers = cluster.others(leader);
    const control = await connectControl({ url: cluster.urls, token: TOKENS.admin, requestTimeoutMs: 3000 });
    const wf = await control.createWorkflow({ userQuery: 'damaged row' });
    const { db, lastSeq } = await journalClient(database);
    const lease = async () => (await db.query<{ owner: string; epoch: string }>('SELECT owner, epoch FROM sb_lease')).rows[0]!;

    // The followers are frozen while the leader commits a good record, one whose row is then damaged,
    // and one after it: they meet the good one and the damaged one in the same read.
    for (const follower of followers) follower.current!.child.kill('SIGSTOP');
    await wf.start();
    await wf.updateProgress('p', 10);
    const damagedSeq = await lastSeq();
    await db.query(`UPDATE sb_journal SET line = 'not a record' WHERE partition = 'main' AND seq = $1`, [damagedSeq]);
    await wf.updateProgress('p', 20);
    for (const follower of followers) follower.current!.child.kill('SIGCONT');

    // Each follower names the row, its partition and the way out.
    const named = `journal row ${damagedSeq} of partition main in PostgreSQL is damaged`;
    for (const follower of followers) {
      const output = await outputMatching(follower.current!, new RegExp(`${escape(named)}.*--truncate-damaged-journal`));
      expect(output).toContain(`no node can load or follow the journal past record ${damagedSeq - 1}`);
    }
    // The leader holds those records in memory and goes on serving: reads agree with it.
    expect((await clusterInfo(leader.url))?.role).toBe('leader');

    // The leader freezes (it holds the records after the damage in memory): its lease runs out, and
    // each follower sees it free (no leader) and leaves it be.
    const epochAtFreeze = Number((await lease()).epoch);
    leader.current!.child.kill('SIGSTOP');
    const seen: ClusterInfo[] = [];
    for (const follower of followers) seen.push(await untilAnswer(async () => {
      const info = await clusterInfo(follower.url);
      return info && info.leader === null ? info : undefined;
    }));
    expect(seen.map((info) => info.role)).toEqual(['follower', 'follower']);
    expect(seen.map((info) => info.version)).toEqual([damagedSeq - 1, damagedSeq - 1]);
    expect(Number((await lease()).epoch)).toBe(epochAtFreeze);
    // Said once per node, not at every look at the journal.
    for (const follower of followers) expect(occurrences(follower.current!.output(), named)).toBe(1);
    // A client that can write nowhere is told why.
    const nowhere = await connectControl({ url: followers[1]!.url, token: TOKENS.admin, connectTimeoutMs: 500 }).then(
      (client) => client.close(),
      (error: Error) => error.message,
    );
    expect(nowhere).toContain(named);

    // A node that starts is refused, naming the row and the way out.
    const [restartedNode, stayed] = followers as [typeof leader, typeof leader];
    await restartedNode.crash();
    const refused = restartedNode.refusedStart();
    expect(refused.status).not.toBe(0);
    expect(refused.output).toContain(named);
    expect(refused.output).toContain('--truncate-damaged-journal');
    expect(Number((await lease()).epoch)).toBe(epochAtFreeze);

    // The way out, once, on one node: the state as of the record before the damage, and the cluster serves again.
    const restarted = await restartedNode.start(['--truncate-damaged-journal']);
    expect(restarted.output()).toContain(`--truncate-damaged-journal: ${named} (it does not decode); deleted rows ${damagedSeq} to ${damagedSeq + 1}; the state is as of record ${damagedSeq - 1}`);
    const serving = await cluster.leader();
    // A client of its own: the first one may still be connected to the frozen node.
    const writer = await connectControl({ url: serving.url, token: TOKENS.admin });
    onTestFinished(() => writer.close());
    const again = writer.workflow(wf.id);
    expect((await again.get()).progress).not.toBe(20);
    // Records take the numbers of those deleted, and go past them: the same stage again, so that
    // the third applies cleanly on top of the deleted ones (only its start time tells them apart).
    for (const percentage of [30, 40, 50]) await again.updateProgress('p', percentage);
    expect((await again.get()).stages.p?.progress).toBe(50);

    // The frozen leader comes back: its records are gone, so it loads its replica again rather than
    // applying the new records on top of them, and ends equal to the leader, as the other follower does.
    leader.current!.child.kill('SIGCONT');
    await outputMatching(leader.current!, /the replica is loaded again from PostgreSQL \(the journal was truncated/);
    const version = (await clusterInfo(serving.url))!.version;
    /** The workflow as the node at `url` holds it, once at the leader's version. */
    const documentAt = async (url: string) => {
      const watcher = await connectMonitor({ url, token: TOKENS.monitor });
      onTestFinished(() => watcher.close());
      const mirror = await watcher.subscribe(wf.id);
      return mirror.until((_, at) => at === version, { what: `version ${version} at ${url}`, timeoutMs: 15_000 });
    };
    const expected = await documentAt(serving.url);
    for (const node of [leader, stayed]) expect(await documentAt(node.url)).toEqual(expected);
    await control.close();
  }, 90_000);

  it('a node that takes the lease right after a truncation it did not see loads its replica again before it leads', async () => {
    const url = await postgres().newDatabase();
    const { db, lastSeq } = await journalClient(url);
    const hub = await startHub({ postgres: url, leaseMs: 1000, leaseRenewMs: 200, leaseCheckMs: 100 });
    await untilTrue(() => hub.cluster().role === 'leader', 'the node leads');
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'truncated under a node about to lead' });
    await wf.start();
    await wf.updateProgress('p', 10);
    const damagedSeq = await lastSeq();
    await wf.updateProgress('p', 20);
    await hub.settle();

    // Between this node's look at the lease and its taking it, the row is damaged and another node
    // truncates the journal (the lease was free): the records from damagedSeq on are gone.
    const truncated = deferred();
    const tryAcquire = LeaseTable.prototype.tryAcquire;
    vi.spyOn(LeaseTable.prototype, 'tryAcquire').mockImplementationOnce(async function (this: LeaseTable, ...args) {
      await db.query(`UPDATE sb_journal SET line = 'not a record' WHERE partition = 'main' AND seq = $1`, [damagedSeq]);
      const other = new PostgresStore({ url, partition: 'main', queryTimeoutMs: 5000, dataDir: tempDir(), snapshotAfterBytes: 1 << 30, snapshotJournalRatio: 0, truncateDamagedJournal: true, onWarning: () => undefined });
      await other.open();
      await other.close();
      truncated.resolve();
      return tryAcquire.apply(this, args);
    });
    // The node loses its lease (the epoch moved on, and the term is over): it follows, then takes it again.
    await db.query(`UPDATE sb_lease SET epoch = epoch + 1, expires_at = now() - interval '1 millisecond'`);
    await truncated.promise;
    await untilTrue(() => hub.cluster().role === 'leader', 'the node leads again');
    await hub.settle();

    // It leads the journal as PostgreSQL holds it, not the records the truncation deleted.
    expect(await lastSeq()).toBe(damagedSeq - 1);
    expect(hub.cluster().version).toBe(damagedSeq - 1);
    expect((await wf.get()).stages.p).toBeUndefined();
  }, 30_000);

  it('a follower behind a damaged row that a newer snapshot holds loads its replica from that snapshot and follows on', async () => {
    const url = await postgres().newDatabase();
    const { db, lastSeq } = await journalClient(url);
    const leader = await startHub({ postgres: url, leaseMs: 1000, leaseRenewMs: 200, leaseCheckMs: 100 });
    await untilTrue(() => leader.cluster().role === 'leader', 'the leader leads');
    const follower = await startHub({ postgres: url, leaseMs: 1000, leaseRenewMs: 200, leaseCheckMs: 100 });
    const wf = await (await control(leader)).createWorkflow({ userQuery: 'damaged under a snapshot' });
    await wf.start();
    await untilTrue(() => follower.cluster().version === leader.cluster().version, 'the follower at the leader');

    // The follower reads nothing more until the leader wrote records, a snapshot of them was taken, and the first of their rows was damaged.
    const gate = deferred();
    const readFollowing = PostgresStore.prototype.readFollowing;
    vi.spyOn(PostgresStore.prototype, 'readFollowing').mockImplementation(async function (this: PostgresStore, ...args) {
      await gate.promise;
      return readFollowing.apply(this, args);
    });
    try {
      const damagedSeq = (await lastSeq()) + 1;
      for (const percentage of [10, 20, 30]) await wf.updateProgress('p', percentage);
      await leader.settle();
      const pool = new pg.Pool({ connectionString: url });
      onTestFinished(() => pool.end());
      await compactPartition(pool, 'main', await lastSeq());
      await db.query(`UPDATE sb_journal SET line = 'not a record' WHERE partition = 'main' AND seq = $1`, [damagedSeq]);
      await wf.updateProgress('p', 40);
    } finally {
      gate.resolve();
    }

    await untilTrue(() => follower.cluster().version === leader.cluster().version, "the follower at the leader's version");
    expect(follower.state.workflows.get(wf.id)).toEqual(leader.state.workflows.get(wf.id));
  });

  it('a follower woken by the new records after a truncation loads its replica again instead of applying them on top of the deleted ones, and its monitors follow the replica it loaded', async () => {
    const url = await postgres().newDatabase();
    const { db, lastSeq } = await journalClient(url);
    const fast = { leaseMs: 1000, leaseRenewMs: 200, leaseCheckMs: 100 };
    // Ended workflows leave memory at the next sweep.
    const first = await startHub({ postgres: url, ...fast, keepFinishedMs: 0, sweepIntervalMs: 20 });
    await untilTrue(() => first.cluster().role === 'leader', 'the first node leads');
    // A follower that looks at the lease once a minute: only the journal's notifications wake it.
    const follower = await startHub({ postgres: url, leaseMs: 120_000, leaseRenewMs: 1000, leaseCheckMs: 60_000 });
    const leaderControl = await control(first);
    const wf = await leaderControl.createWorkflow({ id: 'wf-truncated', userQuery: 'truncated under a follower' });
    await wf.start();
    await wf.updateProgress('p', 10);
    const damagedSeq = await lastSeq();
    // Records the truncation deletes: a workflow created, and the first one ended and archived.
    await leaderControl.createWorkflow({ id: 'wf-gone', userQuery: 'created in deleted records' });
    await untilTrue(() => follower.state.workflows.has('wf-gone'), 'the follower holds wf-gone');
    const watcher = await monitor(follower);
    const mirror = await watcher.subscribe<Workflow>(wf.id);
    await watcher.subscribe('wf-gone', { view: { kind: 'summary' } });
    await wf.cancel();
    await untilTrue(() => !first.state.workflows.has(wf.id), 'the leader archived the workflow');
    // The eviction leaves memory before its record commits.
    await first.settle();
    const held = await lastSeq();
    await untilTrue(() => follower.cluster().version === held, 'the follower holds every record');
    await mirror.until((workflow) => workflow.status === 'cancelled', { what: 'the cancel on the follower' });

    // The leader stops; the row is damaged; a node truncates from it and leads.
    await first.close();
    await db.query(`UPDATE sb_journal SET line = 'not a record' WHERE partition = 'main' AND seq = $1`, [damagedSeq]);
    const second = await startHub({ postgres: url, ...fast, truncateDamagedJournal: true });
    await untilTrue(() => second.cluster().role === 'leader', 'the truncating node leads');
    const again = (await control(second)).workflow(wf.id);
    // The same stage again: the records apply cleanly on top of the deleted ones (only its start time tells them apart).
    for (const percentage of [30, 40, 50, 60, 70]) await again.updateProgress('p', percentage);
    const version = await lastSeq();
    expect(version).toBe(held + 1);

    await untilTrue(() => follower.cluster().version === version, 'the follower at the leader\'s version');
    expect(follower.state.workflows.get(wf.id)).toEqual(second.state.workflows.get(wf.id));
    expect(follower.state.workflows.has('wf-gone')).toBe(false);
    // The workflow is back in memory (its eviction was deleted): its subscriber is sent back to a
    // snapshot rather than left with the cancelled copy. The one that is gone is no longer mirrored.
    const reloaded = await mirror.until((workflow) => workflow.status === 'in_progress', { what: 'the replica loaded again', timeoutMs: 10_000 });
    expect(reloaded).toEqual(follower.state.workflows.get(wf.id));
    await untilTrue(() => !watcher.docs.has('wf-gone/summary'), 'the view of wf-gone no longer mirrored');
  }, 30_000);
});

/** The process's output once it matches `pattern`; rejects with what it printed after `timeoutMs`. */
function outputMatching(process: { waitForOutput(pattern: RegExp): Promise<string>; output(): string }, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms:\n${process.output().slice(-2000)}`)), timeoutMs);
  });
  return Promise.race([process.waitForOutput(pattern), late]).finally(() => clearTimeout(timer));
}
