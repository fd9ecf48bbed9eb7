import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHub, EmbeddedStore, type RunningHub } from '../server/index.ts';
import type { WorkflowHandle } from '../client-sdk/index.ts';
import { readSnapshot } from '../server/store/snapshot.ts';
import { compareCreation } from '../shared/schemas/workflow.ts';
import { control, crashCopy, GRANTS, monitor, startHub, tempDir } from './helpers/hub.ts';

type Client = Awaited<ReturnType<typeof control>>;

/** Builds a workflow that touches every kind of change. */
async function busyWorkflow(client: Client, n: number) {
  const wf = await client.createWorkflow({ userQuery: `persist ${n}`, config: { maxConcurrentAgents: 2 } });
  await wf.start();
  const objective = await wf.addObjective({ name: 'goal', target: 'all' });
  await wf.updateObjective(objective.id, { progress: 30 });
  const kpi = await wf.addKpi({ name: 'rate', target: 10 });
  for (let i = 0; i < 5; i++) await wf.recordKpi(kpi.id, i * 3);
  const step = await wf.addStep({ name: 'step', start: true });
  await wf.completeStep(step.id, { ok: true });
  await wf.updateProgress('stage', 40 + n);
  return wf;
}

/** An embedded store on `dataDir` snapshotting every 2 KB of journal, and per background snapshot the documents it serialised and those it copied from the one before. */
function recordingSnapshots(dataDir: string) {
  const store = new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 2048, onWarning: (m) => expect.fail(m) });
  const taken: Array<{ serialised: string[]; copied: string[] }> = [];
  const start = store.startPinnedSnapshot.bind(store);
  store.startPinnedSnapshot = (pinned) => {
    taken.push({ serialised: pinned.docs.filter((d) => d.json).map((d) => d.key), copied: pinned.docs.filter((d) => !d.json).map((d) => d.key) });
    start(pinned);
  };
  return { store, taken };
}

/**
 * Copies `dataDir` as a crash would leave it now, stops `hub`, and checks that a hub started on
 * the copy holds `workflows` as they were; returns them.
 */
async function restartsEqual(dataDir: string, hub: RunningHub, client: Client, workflows: WorkflowHandle[]) {
  const copy = crashCopy(dataDir);
  const before = await Promise.all(workflows.map((w) => w.get()));
  client.close();
  await hub.close();
  const again = await control(await startHub({ dataDir: copy }));
  expect(await Promise.all(workflows.map((w) => again.workflow(w.id).get()))).toEqual(before);
  return before;
}

describe('persistence', () => {
  it('keeps every acknowledged change across a restart on the same data directory', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const client = await control(first);
    const workflows = [];
    for (let n = 0; n < 5; n++) workflows.push(await busyWorkflow(client, n));
    await workflows[4]!.complete();
    const before = await Promise.all(workflows.map((w) => w.get()));
    const versions = workflows.map((w) => w.version);
    client.close();
    await first.close();

    const second = await startHub({ dataDir });
    const again = await control(second);
    const after = await Promise.all(workflows.map((w) => again.workflow(w.id).get()));
    expect(after).toEqual(before);
    const summaries = await Promise.all(workflows.map((w) => again.workflow(w.id).summary()));
    expect(summaries.map((s) => s.version)).toEqual(versions);
    // Oldest first; any created in the same millisecond by id.
    const listOrder = [...before].sort((x, y) => compareCreation(x.createdAt, x.id, y.createdAt, y.id));
    expect((await again.listWorkflows()).items.map((w) => w.id)).toEqual(listOrder.map((w) => w.id));
  });

  it('starts after a crash of an idle hub followed by an idle run stopped cleanly (no journal segment named that is gone)', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const wf = await (await control(first)).createWorkflow({ userQuery: 'kept across it all' });
    await first.close();
    // Idle, then killed: its newest segment is empty.
    const idle = await startHub({ dataDir });
    const crashed = crashCopy(dataDir);
    await idle.close();
    // The next run writes nothing and stops cleanly.
    await (await startHub({ dataDir: crashed })).close();
    const last = await startHub({ dataDir: crashed });
    expect(await (await control(last)).workflow(wf.id).get()).toMatchObject({ userQuery: 'kept across it all' });
  });

  it('recovers a bulk creation from the journal alone, as a crash leaves it (its ops folded into the orders created)', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const client = await control(first);
    const wf = await client.createWorkflow({ userQuery: 'bulk' });
    await wf.start();
    // Enough ops in one record to be folded: orders queued at once, others waiting on them, with dependents recorded.
    const created = await wf.createWorkOrders(
      Array.from({ length: 40 }, (_, i) => ({ id: `o${i}`, taskType: 'idle', description: `order ${i}`, requirements: i % 3 ? [] : ['gpu'], dependencies: i >= 20 ? [`o${i - 20}`, `o${(i * 7) % 20}`] : [] })),
    );
    expect(created).toHaveLength(40);
    await first.settle();
    const before = await wf.get();
    expect(Object.values(before.workOrders).filter((o) => o.state === 'queued')).toHaveLength(20);
    // What a kill -9 leaves: the journal as written, no snapshot (the lock file stays behind too).
    const copy = crashCopy(dataDir);
    expect(readdirSync(copy).filter((f) => f === 'snapshot.json')).toEqual([]);
    client.close();

    const second = await startHub({ dataDir: copy });
    const again = await control(second);
    expect(await again.workflow(wf.id).get()).toEqual(before);
  });

  it('recovers a workflow cancelled with many orders from the journal alone, as its monitor saw it', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const client = await control(first);
    const wf = await client.createWorkflow({ userQuery: 'cancel many' });
    await wf.start();
    // Orders nobody can take (marked unservable), and chains waiting on them.
    await wf.createWorkOrders(Array.from({ length: 60 }, (_, i) => ({ id: `o${i}`, taskType: 'idle', description: `order ${i}`, dependencies: i >= 40 ? [`o${i - 40}`] : [] })));
    expect((await wf.get()).unservable).toBe(40);
    const watcher = await monitor(first);
    const mirror = await watcher.subscribe(wf.id);
    await wf.cancel('enough');
    await first.settle();
    const before = await wf.get();
    expect(before.workOrderCounts).toMatchObject({ cancelled: 60, queued: 0, blocked: 0 });
    expect(before.unservable).toBe(0);
    // The patches the monitor got (the counts written once) lead to the same document.
    await mirror.until((_, at) => at >= first.state.versions.get(wf.id)!, { what: 'the cancel' });
    expect(JSON.stringify(mirror.state)).toBe(JSON.stringify(first.state.workflows.get(wf.id)));
    const copy = crashCopy(dataDir);
    expect(readdirSync(copy).filter((f) => f === 'snapshot.json')).toEqual([]);
    client.close();
    watcher.close();

    const second = await startHub({ dataDir: copy });
    const again = await control(second);
    expect(await again.workflow(wf.id).get()).toEqual(before);
  });

  it('recovers from snapshots taken in the background, which copy the documents that did not change, plus the journal after them', async () => {
    const dataDir = tempDir();
    const { store, taken } = recordingSnapshots(dataDir);
    const first = await startHub({ dataDir }, { store });
    const client = await control(first);
    const many = await client.createWorkflow({ userQuery: 'many orders' });
    for (let done = 0; done < 2_000; done += 400) await many.createWorkOrders(Array.from({ length: 400 }, (_, i) => ({ id: `o${done + i}`, taskType: 'idle', description: `order ${done + i}` })));
    const workflows = [many];
    // Each snapshot written before the next falls due, so that every later one finds the one before on disk.
    const settled = async () => {
      await first.settle();
      await store.snapshotSettled();
    };
    await settled();
    for (let n = 0; n < 4; n++) {
      workflows.push(await busyWorkflow(client, n));
      await settled();
    }
    // The big workflow changes once more after snapshots copied it, and later ones must not copy the old text.
    const copiedBefore = taken.filter((t) => t.copied.includes(many.id)).length;
    const beforeCancel = taken.length;
    await many.cancelWorkOrder('o7');
    for (let n = 4; n < 8; n++) {
      workflows.push(await busyWorkflow(client, n));
      await settled();
    }
    expect(copiedBefore).toBeGreaterThan(0);
    // The first snapshot after the change serialised it again; the ones after that copied it.
    const later = taken.slice(beforeCancel);
    expect(later[0]?.serialised).toContain(many.id);
    expect(later.slice(1).some((t) => t.copied.includes(many.id))).toBe(true);
    const snapshot = await readSnapshot(dataDir);
    expect(snapshot).toMatchObject({ format: 3 });
    expect(snapshot!.seq).toBeGreaterThan(0);

    // The directory as a crash would leave it now: the last background snapshot and the journal after it.
    const before = await restartsEqual(dataDir, first, client, workflows);
    expect(before[0]!.workOrders['o7']?.state).toBe('cancelled');
  });

  it('after a restart, the first snapshot copies the workflows that neither the hub nor the journal it replayed changed', async () => {
    const dataDir = tempDir();
    const quiet = (dir: string) => new EmbeddedStore({ dataDir: dir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: (m) => expect.fail(m) });
    const first = await startHub({ dataDir }, { store: quiet(dataDir) });
    let client = await control(first);
    const many = await client.createWorkflow({ userQuery: 'many orders' });
    await many.createWorkOrders(Array.from({ length: 400 }, (_, i) => ({ id: `o${i}`, taskType: 'idle', description: `order ${i}` })));
    const other = await busyWorkflow(client, 0);
    client.close();
    await first.close();

    // A change the journal holds after that snapshot, in the directory as a crash leaves it.
    const second = await startHub({ dataDir }, { store: quiet(dataDir) });
    client = await control(second);
    await client.workflow(many.id).cancelWorkOrder('o5');
    await second.settle();
    const crashed = crashCopy(dataDir);
    client.close();
    await second.close();

    const { store, taken } = recordingSnapshots(crashed);
    const third = await startHub({ dataDir: crashed }, { store });
    client = await control(third);
    const workflows = [client.workflow(many.id), client.workflow(other.id)];
    while (taken.length === 0) workflows.push(await busyWorkflow(client, workflows.length));
    await third.settle();
    await store.snapshotSettled();
    expect(taken[0]!.serialised).toContain(many.id);
    expect(taken[0]!.copied).toEqual([other.id]);

    const before = await restartsEqual(crashed, third, client, workflows);
    expect(before[0]!.workOrders['o5']?.state).toBe('cancelled');
  });

  it('releases the data directory when start-up fails, and takes over a lock no live hub holds', async () => {
    const dataDir = tempDir();
    const first = await startHub();
    // The port is taken: this start fails before it touches the data directory, which stays free.
    await expect(createHub({ port: first.port, dataDir, tokens: GRANTS, logLevel: 'silent' })).rejects.toThrow(/EADDRINUSE/);
    const second = await startHub({ dataDir });
    expect(second.url).toMatch(/^http:/);
    await second.close();
    // A lock file naming this very process, held by no hub here (e.g. a container's pid 1 after a restart).
    writeFileSync(join(dataDir, 'hub.lock'), String(process.pid));
    const third = await startHub({ dataDir });
    expect((await (await control(third)).listWorkflows()).items).toEqual([]);
  });

  it('releases the data directory when a stop fails on a full disk, and the next hub keeps every acknowledged change', async () => {
    const dataDir = tempDir();
    // Not startHub's: the test stops it, and its failed stop is the point.
    const first = await createHub({ port: 0, dataDir, tokens: GRANTS, logLevel: 'silent' });
    const client = await control(first);
    const wf = await client.createWorkflow({ userQuery: 'stopped on a full disk' });
    await wf.updateProgress('loading', 40);
    client.close();
    // The manifest cannot be written: its temporary file's name is taken by a folder.
    const blocker = join(dataDir, '.manifest.json.tmp');
    mkdirSync(blocker);
    await expect(first.close()).rejects.toThrow(/EISDIR/);
    rmdirSync(blocker);
    const second = await startHub({ dataDir });
    expect((await (await control(second)).workflow(wf.id).get()).stages.loading!.progress).toBe(40);
  });

  it('refuses a data directory that cannot be created, naming the dataDir setting', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, '');
    const failed = createHub({ port: 0, dataDir: join(file, 'data'), tokens: GRANTS, logLevel: 'silent' });
    await expect(failed).rejects.toThrow(new RegExp(`^dataDir ${join(file, 'data')} cannot be created: ENOTDIR`));
  });

  it.runIf(existsSync('/proc/self'))('refuses a data directory under /proc, where Node\'s own recursive mkdir never returns', async () => {
    const failed = createHub({ port: 0, dataDir: '/proc/switchboard-test/data', tokens: GRANTS, logLevel: 'silent' });
    await expect(failed).rejects.toThrow(/^dataDir \/proc\/switchboard-test\/data cannot be created: ENOENT/);
  });

  it('refuses a second hub on the same data directory with a clear message', async () => {
    const dataDir = tempDir();
    await startHub({ dataDir });
    await expect(createHub({ port: 0, dataDir, tokens: GRANTS, logLevel: 'silent' })).rejects.toThrow(/in use by another hub/);
  });
});
