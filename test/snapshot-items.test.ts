import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedStore, type RunningHub } from '../server/index.ts';
import type { WorkflowHandle } from '../client-sdk/index.ts';
import type { PinnedDocs, SnapshotEvent } from '../server/store/store.ts';
import { readSnapshot, SNAPSHOT_FILE, snapshotText } from '../server/store/snapshot.ts';
import { deferred } from './helpers/wait.ts';
import { control, crashCopy, startHub, tempDir } from './helpers/hub.ts';

type Finished = Extract<SnapshotEvent, { phase: 'finished' }>;

/** A hub whose embedded store snapshots every 2 KB of journal, with the snapshots it finished; `hold()` keeps the next one from writing until released. */
async function snapshottingHub() {
  const dataDir = tempDir();
  const finished: Finished[] = [];
  let gate: Promise<void> | undefined;
  const store = new EmbeddedStore({
    dataDir,
    fsync: false,
    snapshotAfterBytes: 2048,
    onWarning: (m) => expect.fail(m),
    onSnapshot: (event) => void (event.phase === 'finished' && event.from === 'memory' && finished.push(event)),
  });
  const start = store.startPinnedSnapshot.bind(store);
  const pinned = { count: 0 };
  let onPin: (() => void) | undefined;
  store.startPinnedSnapshot = (docs: PinnedDocs) => {
    pinned.count++;
    onPin?.();
    const held = gate;
    if (!held) return start(docs);
    const wait = <T,>(chunks: AsyncIterable<T>) =>
      (async function* () {
        await held;
        yield* chunks;
      })();
    start({ ...docs, docs: docs.docs.map((d) => (d.json ? { ...d, json: { ...d.json, chunks: wait(d.json.chunks) } } : d)) });
  };
  const hub = await startHub({ dataDir }, { store });
  const client = await control(hub);
  const filler = await client.createWorkflow({ userQuery: 'filler' });
  /** Writes to another workflow until a snapshot is pinned after `change`, then waits for it to be on disk. */
  const snapshotAfter = async (change: () => Promise<unknown>) => {
    await change();
    const before = pinned.count;
    for (let n = 0; pinned.count === before; n++) {
      await filler.updateProgress('filling', n % 100);
      await hub.settle();
    }
    await store.snapshotSettled();
    return finished.at(-1)!;
  };
  /** Holds the next snapshot from writing once pinned (`pinned`) until `release()`. */
  const hold = () => {
    const release = deferred();
    const pinnedNow = deferred();
    gate = release.promise;
    onPin = () => pinnedNow.resolve();
    return {
      pinned: pinnedNow.promise,
      release: () => {
        gate = undefined;
        onPin = undefined;
        release.resolve();
      },
    };
  };
  return { dataDir, hub, client, store, finished, snapshotAfter, hold };
}

/** The snapshot file is exactly what serialising its own documents gives: no item copied to a wrong place, none twice. */
function expectCanonicalSnapshot(dataDir: string) {
  return readSnapshot(dataDir).then((snapshot) => {
    const text = readFileSync(join(dataDir, SNAPSHOT_FILE), 'utf8');
    expect(text).toBe(snapshotText({ segment: snapshot!.segment, seq: snapshot!.seq, docs: snapshot!.docs }).text);
    return snapshot!;
  });
}

/**
 * A snapshot's items, those of the big workflow (`orders`: its work orders and data references)
 * plus at most SMALL_ITEMS others (its counts and config, the filler workflow's): only `orders.serialised` of
 * the big ones were serialised.
 */
function expectItems(event: Finished, orders: { copied: number; serialised: number }) {
  const { copied, serialised } = event.items!;
  expect(copied).toBeGreaterThanOrEqual(orders.copied);
  expect(serialised).toBeGreaterThanOrEqual(orders.serialised);
  expect(serialised - orders.serialised).toBeLessThanOrEqual(SMALL_ITEMS);
  expect(copied - orders.copied).toBeLessThanOrEqual(SMALL_ITEMS * 2);
}

/** Items besides work orders and data references in the two workflows (8 counts and 4 config keys each, a stage). */
const SMALL_ITEMS = 12;

/** A hub started on a copy of `dataDir` as a crash leaves it holds `workflows` as they are now. */
async function expectRestartEqual(dataDir: string, hub: RunningHub, workflows: WorkflowHandle[]) {
  const copy = crashCopy(dataDir);
  const before = await Promise.all(workflows.map((w) => w.get()));
  await hub.close();
  const again = await control(await startHub({ dataDir: copy }));
  expect(await Promise.all(workflows.map((w) => again.workflow(w.id).get()))).toEqual(before);
}

describe('snapshots copy unchanged items', () => {
  it('serialises only the work orders and data references written since the snapshot before, and copies the rest', async () => {
    const { dataDir, hub, client, snapshotAfter } = await snapshottingHub();
    const wf = await client.createWorkflow({ userQuery: 'many orders' });
    await wf.start();
    await snapshotAfter(() => wf.createWorkOrders(Array.from({ length: 400 }, (_, i) => ({ id: `o${i}`, taskType: 'idle', description: `order ${i}` }))));

    // Two orders change: they are serialised again (with the few other items written: counts, the filler's stage), the 398 others copied.
    const changed = await snapshotAfter(async () => {
      await wf.cancelWorkOrder('o7');
      await wf.cancelWorkOrder('o399', 'last one');
    });
    expectItems(changed, { copied: 398, serialised: 2 });
    await expectCanonicalSnapshot(dataDir);

    // New orders at the end, and data references (another field of items).
    const grown = await snapshotAfter(async () => {
      await wf.createWorkOrders([{ id: 'o400', taskType: 'idle', description: 'new' }]);
      await wf.addDataReference({ id: 'raw', path: 's3://bucket/raw.csv', tags: ['input'] });
    });
    expectItems(grown, { copied: 400, serialised: 2 });
    const again = await snapshotAfter(() => wf.updateDataReference('raw', { tags: ['input', 'checked'] }));
    expectItems(again, { copied: 401, serialised: 1 });
    const snapshot = await expectCanonicalSnapshot(dataDir);
    const orders = (snapshot.docs.find(([key]) => key === wf.id)![1].doc as { workOrders: Record<string, { state: string }> }).workOrders;
    expect(Object.keys(orders)).toHaveLength(401);
    expect([orders['o7']?.state, orders['o6']?.state, orders['o399']?.state]).toEqual(['cancelled', 'queued', 'cancelled']);

    await expectRestartEqual(dataDir, hub, [wf]);
  });

  it('stays exact when orders whose ids are numbers move the others, and when orders change while the snapshot is written', async () => {
    const { dataDir, hub, client, snapshotAfter, hold } = await snapshottingHub();
    const wf = await client.createWorkflow({ userQuery: 'moving orders' });
    await wf.start();
    await snapshotAfter(() => wf.createWorkOrders(Array.from({ length: 100 }, (_, i) => ({ id: `o${i}`, taskType: 'idle', description: `order ${i}` }))));
    // An id that is an array index comes first in the orders' key order: every other order moves one place.
    const moved = await snapshotAfter(() => wf.createWorkOrder({ id: '7', taskType: 'idle', description: 'numbered' }));
    expectItems(moved, { copied: 0, serialised: 101 });
    await expectCanonicalSnapshot(dataDir);
    const after = await snapshotAfter(() => wf.cancelWorkOrder('o3'));
    expectItems(after, { copied: 100, serialised: 1 });

    // The next snapshot is pinned, then held: items it copies and items it serialises change before it is written.
    await snapshotAfter(() => wf.addDataReference({ id: 'raw', path: 's3://bucket/raw.csv', tags: ['input'] }));
    const held = hold();
    const written = snapshotAfter(async () => {
      await wf.cancelWorkOrder('o5');
      await wf.updateDataReference('raw', { tags: ['pinned'] });
    });
    await held.pinned;
    await wf.cancelWorkOrder('o6');
    await wf.updateDataReference('raw', { tags: ['later'] });
    held.release();
    expectItems(await written, { copied: 99, serialised: 2 });
    const snapshot = await expectCanonicalSnapshot(dataDir);
    const doc = snapshot.docs.find(([key]) => key === wf.id)![1].doc as { workOrders: Record<string, { state: string }>; data: Record<string, { tags: string[] }> };
    // As pinned: o5 cancelled and the reference tagged `pinned`; o6 not yet cancelled.
    expect([doc.workOrders['o5']?.state, doc.workOrders['o6']?.state, doc.data['raw']?.tags]).toEqual(['cancelled', 'queued', ['pinned']]);

    await expectRestartEqual(dataDir, hub, [wf]);
  });
});
