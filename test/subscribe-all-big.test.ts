import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { TimeSlice } from '../server/time-slice.ts';
import { ANSWER_INLINE_BYTES } from '../server/transport/patch-stream.ts';
import { readTransfer } from '../client-sdk/transfers.ts';
import { workflowsPastAnswerBound } from './helpers/answer-bound.ts';
import { codeOf } from './helpers/errors.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { control, monitor, startHub } from './helpers/hub.ts';
import { deferred, untilTrue } from './helpers/wait.ts';
import { recordRequests } from './helpers/requests.ts';

/** More than the 64 transfers one connection may hold open at once. */
const WORKFLOWS = 66;

describe('subscribeAll to many big workflows', () => {
  it('mirrors every workflow, though one answer carries more big snapshots than a connection may hold transfers', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // Five orders of 250 KB each: every workflow is over the 1 MB a reply holds inline.
    const input = 'x'.repeat(250_000);
    const ids: string[] = [];
    for (let w = 0; w < WORKFLOWS; w++) {
      const wf = await client.createWorkflow({ userQuery: `big ${w}` });
      await wf.createWorkOrders([0, 1, 2].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
      await wf.createWorkOrders([3, 4].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
      ids.push(wf.id);
    }
    const raw = await monitor(hub);
    const answer = await raw.connection.request('subscribeAll', { versions: {} });
    expect(answer.docs.filter((s) => s.mode === 'snapshot' && s.transfer).length).toBe(WORKFLOWS);
    await raw.close();

    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    for (const id of ids) expect(Object.keys((mirrors.get(id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(5);
  });

  it('holds its answer to a bounded message: snapshots past ANSWER_INLINE_BYTES come as transfers, and every workflow is mirrored', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const ids = await workflowsPastAnswerBound(client);
    const raw = await monitor(hub);
    const answer = await raw.connection.request('subscribeAll', { versions: {} });
    expect(JSON.stringify(answer).length).toBeLessThanOrEqual(ANSWER_INLINE_BYTES + 100_000);
    expect(answer.docs.filter((s) => s.mode === 'snapshot' && s.transfer).length).toBeGreaterThan(0);
    expect(answer.docs.filter((s) => s.doc !== '@agents')).toHaveLength(ids.length);
    // Asked again holding the last few workflows only: the others' snapshots spend the bound, and the
    // held ones, which missed nothing, still resume with no ops rather than come as snapshots.
    const held = new Set(ids.slice(-3));
    const versions = Object.fromEntries(answer.docs.filter((s) => held.has(s.doc)).map((s) => [s.doc, s.mode === 'snapshot' ? s.version : s.to]));
    const resumed = await raw.connection.request('subscribeAll', { versions, epoch: answer.docs[0]!.epoch });
    expect(resumed.docs.filter((s) => held.has(s.doc)).map((s) => [s.doc, s.mode, s.mode === 'patches' && s.ops.length])).toEqual([...held].map((id) => [id, 'patches', 0]));
    await raw.close();

    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    for (const id of ids) expect(Object.keys((mirrors.get(id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(4);
  });

  it('asks for everything again at once when the connection drops while it reads the snapshots, never for each workflow alone', async () => {
    const hub = await startHub();
    const ids = await workflowsPastAnswerBound(await control(hub));
    const watcher = await monitor(hub);
    const sent: string[] = [];
    const request = watcher.connection.request.bind(watcher.connection);
    let reads = 0;
    watcher.connection.request = (async (...args: Parameters<typeof request>) => {
      sent.push(args[0]);
      try {
        return await request(...args);
      } catch (error) {
        sent.push(`${args[0]} ${(error as { code?: string }).code}`);
        throw error;
      } finally {
        // The first snapshot read, the connection drops: the answer's other transfers were that connection's.
        if (args[0] === 'transfer.read' && reads++ === 0) watcher.connection.socket.io.engine.close();
      }
    }) as typeof request;
    const mirrors = await watcher.subscribeAll();
    for (const id of ids) expect(Object.keys((mirrors.get(id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(4);
    expect(sent.filter((event) => event.endsWith('NOT_FOUND') || event === 'subscribe')).toEqual([]);
    expect(sent.filter((event) => event === 'subscribeAll')).toHaveLength(2);
  });

  it('asks for everything again when the connection drops during the read of its last snapshot, and does not fail', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'over 1 MB: its snapshot comes as a transfer' });
    const input = 'x'.repeat(250_000);
    await wf.createWorkOrders([0, 1, 2].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
    await wf.createWorkOrders([3, 4].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
    const watcher = await monitor(hub);
    const sent = recordRequests(watcher.connection);
    // The read goes out, and the connection drops before its answer: the read fails DISCONNECTED, and no snapshot is left to read.
    let armed = true;
    watcher.connection.socket.onAnyOutgoing((event) => {
      if (event !== 'transfer.read' || !armed) return;
      armed = false;
      queueMicrotask(() => watcher.connection.socket.io.engine.close());
    });
    const mirrors = await watcher.subscribeAll();
    expect(Object.keys((mirrors.get(wf.id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(5);
    expect(sent.filter((event) => event === 'subscribeAll')).toHaveLength(2);
  });

  it('answers others while its answer is built, and a change made meanwhile reaches the mirrors', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const workflows = await Promise.all([0, 1, 2].map((w) => client.createWorkflow({ userQuery: `small ${w}` })));
    const watcher = await monitor(hub);
    // Every slice spent at once, and the hub's next turn held until the test lets it go: between two documents' answers.
    const gate = deferred();
    vi.spyOn(TimeSlice.prototype, 'spent', 'get').mockReturnValue(true);
    const next = TimeSlice.prototype.next;
    const held = vi.spyOn(TimeSlice.prototype, 'next').mockImplementation(async function (this: TimeSlice) {
      await gate.promise;
      return next.call(this);
    });
    onTestFinished(() => void vi.restoreAllMocks());
    let answered = false;
    const following = watcher.subscribeAll().then((mirrors) => ((answered = true), mirrors));
    await untilTrue(() => held.mock.calls.length > 0, 'the hub between two answers');
    // Every workflow changes, those answered already and those not.
    for (const wf of workflows) await wf.createWorkOrders([{ id: 'late', taskType: 'nobody-serves-this' }]);
    expect(answered).toBe(false);
    gate.resolve();
    const mirrors = await following;
    for (const wf of workflows) {
      const mirror = mirrors.get(wf.id)!;
      await mirror.until((state) => (state as Workflow).workOrders.late !== undefined, { what: `${wf.id}'s late order` });
      expect(mirror.state).toEqual(await wf.get());
    }
  });

  it('builds again, in the new epoch, the answers built before a rollback that came while the rest were built', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const first = await client.createWorkflow({ id: 'first', userQuery: 'answered before the rollback' });
    await client.createWorkflow({ id: 'second', userQuery: 'answered after it' });
    // Applied, not on disk yet: the first answer shows it.
    store.hold();
    const refused = codeOf(first.updateProgress('ghost', 20));
    await store.holding.promise;
    // Every slice spent at once; each turn of the hub between two answers waits for a permit from the test.
    const permits: Array<() => void> = [];
    vi.spyOn(TimeSlice.prototype, 'spent', 'get').mockReturnValue(true);
    const next = TimeSlice.prototype.next;
    vi.spyOn(TimeSlice.prototype, 'next').mockImplementation(async function (this: TimeSlice) {
      await new Promise<void>((resolve) => permits.push(resolve));
      return next.call(this);
    });
    onTestFinished(() => void vi.restoreAllMocks());
    const watcher = await monitor(hub);
    const following = watcher.subscribeAll();
    await untilTrue(() => permits.length === 1, 'the hub before the first answer');
    permits.shift()!();
    await untilTrue(() => permits.length === 1, 'the hub between the first and second answers');
    // The write fails: the ghost is rolled back, and its resync notice goes out before the answer.
    const notice = new Promise<void>((resolve) => watcher.connection.socket.once('resync', () => resolve()));
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');
    await notice;
    // Told to ask for everything again: the SDK does once the answer under way is in.
    vi.restoreAllMocks();
    permits.splice(0).forEach((permit) => permit());
    const mirrors = await following;
    // A change after the answer takes the rolled-back version's number: the mirror must show it on the hub's state.
    await first.updateProgress('real', 33);
    const state = await mirrors.get(first.id)!.until((w) => (w as Workflow).stages.real !== undefined, { what: 'the change after the rollback', timeoutMs: 5000 });
    expect(state).toEqual(await first.get());
  });

  it('builds again a big snapshot that a rollback ended while later answers were still being built, and the hub goes on', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const big = await client.createWorkflow({ id: 'big', userQuery: 'over 1 MB: a transfer' });
    for (const ids of [[0, 1, 2], [3, 4]]) await big.createWorkOrders(ids.map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input: 'x'.repeat(250_000) })));
    const small = await client.createWorkflow({ id: 'small', userQuery: 'answered after it' });
    store.hold();
    const refused = codeOf(small.updateProgress('ghost', 20));
    await store.holding.promise;
    // Every slice spent at once; each turn the hub's snapshot reads and subscribeAll wait for goes on when the test says.
    const permits: Array<{ pin: boolean; go: () => void }> = [];
    vi.spyOn(TimeSlice.prototype, 'spent', 'get').mockReturnValue(true);
    const next = TimeSlice.prototype.next;
    vi.spyOn(TimeSlice.prototype, 'next').mockImplementation(async function (this: TimeSlice) {
      const pin = new Error().stack!.includes('pinned-json');
      await new Promise<void>((go) => permits.push({ pin, go }));
      return next.call(this);
    });
    onTestFinished(() => void vi.restoreAllMocks());
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onTestFinished(() => void process.off('unhandledRejection', onUnhandled));
    const watcher = await monitor(hub);
    const answer = watcher.connection.request('subscribeAll', { versions: {} });
    await untilTrue(() => permits.length === 1, 'the hub before the first answer');
    permits.shift()!.go();
    // The big workflow's snapshot is under way, and subscribeAll waits before the next document.
    await untilTrue(() => permits.some((permit) => permit.pin) && permits.some((permit) => !permit.pin), 'the snapshot and the answer both waiting');
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');
    // The snapshot goes on, finds its pin ended by the rollback, and fails while subscribeAll still waits.
    const pin = permits.splice(permits.findIndex((permit) => permit.pin), 1)[0]!;
    pin.go();
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
    vi.restoreAllMocks();
    permits.splice(0).forEach((permit) => permit.go());
    const { docs } = await answer;
    expect(docs.filter((doc) => doc.doc !== '@agents').map((doc) => [doc.doc, doc.mode, doc.mode === 'snapshot' && doc.transfer !== undefined]).sort()).toEqual([
      ['big', 'snapshot', true],
      ['small', 'snapshot', false],
    ]);
    // Read whole in the new epoch: the orders of the big one, none of the undone stage of the small one.
    const bigDoc = docs.find((doc) => doc.doc === 'big')!;
    expect(bigDoc.epoch).toBe(docs.find((doc) => doc.doc === 'small')!.epoch);
    if (bigDoc.mode !== 'snapshot' || !bigDoc.transfer) throw new Error('the big workflow came as no transfer');
    const read = JSON.parse(await readTransfer(watcher.connection, bigDoc.transfer)) as Workflow;
    expect(Object.keys(read.workOrders)).toHaveLength(5);
    expect(docs.find((doc) => doc.doc === 'small')).toMatchObject({ state: { stages: {} } });
    expect(unhandled).toEqual([]);
  });
});
