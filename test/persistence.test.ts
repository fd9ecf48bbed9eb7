import { cpSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createHub, EmbeddedStore } from '../server/index.ts';
import { LOCK_FILE } from '../server/store/lock.ts';
import { readSnapshot } from '../server/store/snapshot.ts';
import { control, GRANTS, startHub, tempDir } from './helpers/hub.ts';

/** Builds a workflow that touches every kind of change. */
async function busyWorkflow(client: Awaited<ReturnType<typeof control>>, n: number) {
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
    expect((await again.listWorkflows()).items.map((w) => w.id)).toEqual(workflows.map((w) => w.id));
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
    const copy = tempDir();
    for (const name of readdirSync(dataDir)) if (name !== LOCK_FILE) cpSync(join(dataDir, name), join(copy, name), { recursive: true });
    expect(readdirSync(copy).filter((f) => f === 'snapshot.json')).toEqual([]);
    client.close();

    const second = await startHub({ dataDir: copy });
    const again = await control(second);
    expect(await again.workflow(wf.id).get()).toEqual(before);
  });

  it.each([
    ['small: written from memory', 0],
    ['large: rebuilt from the journal', 2_000],
  ])('recovers from snapshots taken in the background (%s) plus the journal written after them', async (_, orders) => {
    const dataDir = tempDir();
    const store = new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 2048, onWarning: (m) => expect.fail(m) });
    // Which way each background snapshot was taken: with the hub's documents, or by replay.
    const fromMemory: boolean[] = [];
    const start = store.startSnapshot.bind(store);
    store.startSnapshot = (current) => {
      fromMemory.push(current !== undefined);
      start(current);
    };
    const first = await startHub({ dataDir }, { store });
    const client = await control(first);
    const workflows = [];
    if (orders > 0) {
      const many = await client.createWorkflow({ userQuery: 'many orders' });
      for (let done = 0; done < orders; done += 400) await many.createWorkOrders(Array.from({ length: 400 }, (_, i) => ({ taskType: 'idle', description: `order ${done + i}` })));
      workflows.push(many);
      // The snapshots taken while it was small are done: every one from here on sees the large state.
      await first.settle();
      await store.snapshotSettled();
    }
    for (let n = 0; n < 8; n++) workflows.push(await busyWorkflow(client, n));
    await first.settle();
    await store.snapshotSettled();
    // Taken while the hub served, not only when it closed; from memory only while the state was small.
    expect((await readSnapshot(dataDir))?.seq).toBeGreaterThan(0);
    expect(fromMemory.at(-1)).toBe(orders === 0);
    const before = await Promise.all(workflows.map((w) => w.get()));
    client.close();
    await first.close();
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.journal'))).toEqual([]);

    const second = await startHub({ dataDir });
    const again = await control(second);
    expect(await Promise.all(workflows.map((w) => again.workflow(w.id).get()))).toEqual(before);
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

  it('refuses a second hub on the same data directory with a clear message', async () => {
    const dataDir = tempDir();
    await startHub({ dataDir });
    await expect(createHub({ port: 0, dataDir, tokens: GRANTS, logLevel: 'silent' })).rejects.toThrow(/in use by another hub/);
  });
});
