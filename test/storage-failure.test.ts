import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../server/index.ts';
import { agent, control, monitor, startHub, tempDir } from './helpers/hub.ts';
import { codeOf } from './helpers/errors.ts';
import { diskFull, WrappedStore } from './helpers/wrapped-store.ts';

/** The embedded store, with a switch that makes the next writes fail as a full disk would. */
class FailingStore extends WrappedStore {
  failing = false;
  override append(records: string | Uint8Array, firstSeq: number) {
    return this.failing ? Promise.reject(diskFull()) : this.inner.append(records, firstSeq);
  }
}

async function failingHub(dataDir: string) {
  const store = new FailingStore(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
  const hub = await startHub({ dataDir }, { store });
  return { hub, store };
}

describe('a failed journal write', () => {
  it('refuses the change with UNAVAILABLE, leaves memory as on disk, and the hub carries on', async () => {
    const dataDir = tempDir();
    const { hub, store } = await failingHub(dataDir);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'disk full' });
    await wf.start();
    await wf.updateProgress('loading', 10);
    const before = await wf.get();
    const version = (await wf.summary()).version;

    store.failing = true;
    // Several changes in the same tick share the failed write: all are refused and undone.
    const codes = await Promise.all([wf.updateProgress('loading', 50), wf.addObjective({ name: 'never stored' }), wf.createWorkOrder({ taskType: 't' })].map(codeOf));
    expect(codes).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect((await wf.summary()).version).toBe(version);
    expect(await wf.get()).toEqual(before);

    store.failing = false;
    await wf.updateProgress('loading', 60);
    expect((await wf.get()).stages.loading!.progress).toBe(60);
    client.close();
    await hub.close();

    const again = await startHub({ dataDir });
    const state = await (await control(again)).workflow(wf.id).get();
    expect(state.stages.loading!.progress).toBe(60);
    expect(Object.keys(state.objectives)).toEqual([]);
  });

  it('does not push the offer of a refused work order, and assigns the next one normally', async () => {
    const { hub, store } = await failingHub(tempDir());
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'offers after commit' });
    await wf.start();
    const received: string[] = [];
    const worker = await agent(hub, { agentId: 'w', agentType: 'w' });
    await worker.onTask('t', (task) => {
      received.push(task.workOrderId);
      return { result: 'ok' };
    });
    store.failing = true;
    expect(await codeOf(wf.createWorkOrder({ id: 'refused', taskType: 't' }))).toBe('UNAVAILABLE');
    store.failing = false;
    await wf.createWorkOrder({ id: 'accepted', taskType: 't' });
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<{ workOrderCounts: { completed: number } }>(wf.id);
    await mirror.until((w) => w.workOrderCounts.completed >= 1, { what: 'one order completed' });
    expect(received).toEqual(['accepted']);
    expect((await client.getAgent('w')).load).toBe(0);
    expect(await codeOf(wf.getWorkOrder('refused'))).toBe('NOT_FOUND');
  });
});
