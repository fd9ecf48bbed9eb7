import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../server/index.ts';
import type { PinnedDocs } from '../server/store/store.ts';
import { agent, control, crashCopy, monitor, startHub, tempDir } from './helpers/hub.ts';
import { codeOf } from './helpers/errors.ts';
import { deferred, untilOrder, untilTrue } from './helpers/wait.ts';
import { logRecorder } from './helpers/log-recorder.ts';
import type { Logger } from '../server/logger.ts';
import { diskFull, WrappedStore } from './helpers/wrapped-store.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { recordRequests } from './helpers/requests.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';

/** The embedded store, with a switch that makes the next writes fail as a full disk would. */
class FailingStore extends WrappedStore {
  failing = false;
  override append(records: string | Uint8Array, firstSeq: number) {
    return this.failing ? Promise.reject(diskFull()) : this.inner.append(records, firstSeq);
  }
}

async function failingHub(dataDir: string, logger?: Logger) {
  const store = new FailingStore(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
  const hub = await startHub({ dataDir }, { store, ...(logger ? { logger } : {}) });
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

  it('tells a monitor following everything of a rollback once, and it catches every mirror up with one request', async () => {
    const { hub, store } = await failingHub(tempDir());
    const client = await control(hub);
    const workflows = await Promise.all(Array.from({ length: 20 }, (_, i) => client.createWorkflow({ id: `wf${i}`, userQuery: `w${i}` })));
    const watcher = await monitor(hub);
    await watcher.subscribeAll();
    const notices: Array<{ doc: string }> = [];
    watcher.connection.socket.on('resync', (notice: { doc: string }) => notices.push(notice));
    const sent = recordRequests(watcher.connection);

    store.failing = true;
    expect(await codeOf(workflows[3]!.updateProgress('s', 50))).toBe('UNAVAILABLE');
    store.failing = false;
    await workflows[3]!.updateProgress('s', 60);
    await watcher.docs.get('wf3')!.until((w) => (w as Workflow).stages['s']?.progress === 60, { what: 'the stored change mirrored' });
    expect(notices.map((notice) => notice.doc)).toEqual(['*']);
    expect(sent).toEqual(['subscribeAll']);
    for (const [doc, mirror] of watcher.docs) expect(JSON.stringify(mirror.state), doc).toBe(JSON.stringify(doc === '@agents' ? (hub.state.agents ?? {}) : hub.state.workflows.get(doc)));
  });

  it('logs the first of a run of failed writes and the run\'s end, not a line per failed change', async () => {
    const log = logRecorder('warn');
    const { hub, store } = await failingHub(tempDir(), log.logger);
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'disk full for a while' });
    store.failing = true;
    // One after the other: each is a write of its own, and each fails.
    for (const percentage of [10, 20, 30, 40]) expect(await codeOf(wf.updateProgress('loading', percentage))).toBe('UNAVAILABLE');
    store.failing = false;
    await wf.updateProgress('loading', 50);
    expect(log.find('journal write')).toHaveLength(1);
    expect((await log.until('journal writes succeed again')).failed).toBe(4);
  });

  it('answers a refusal that rested on the refused change with UNAVAILABLE, not with what it read', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const first = await control(hub);
    const second = await control(hub);
    store.hold();
    const created = first.createWorkflow({ id: 'wf-taken', userQuery: 'never stored' });
    await store.holding.promise;
    // Refused as a duplicate of the held create, then unchanged by the write's failure: it must not stand.
    const duplicate = codeOf(second.createWorkflow({ id: 'wf-taken', userQuery: 'the second' }));
    // Requests of one connection are applied in order: once this one is, the duplicate was.
    const marker = codeOf(second.createWorkflow({ id: 'wf-marker', userQuery: 'applied after it' }));
    await untilTrue(() => hub.state.workflows.has('wf-marker'), 'the marker applied');
    store.fail();
    expect([await codeOf(created), await duplicate, await marker]).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect(hub.state.workflows.has('wf-taken')).toBe(false);
    expect((await second.createWorkflow({ id: 'wf-taken', userQuery: 'stored' })).id).toBe('wf-taken');
  });

  it('answers a repeated completion with outputs, refused from what memory holds, with UNAVAILABLE once the first is rolled back', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'completion never stored' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'r', ['t']);
    await wf.createWorkOrder({ id: 'o', taskType: 't' });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    await untilOrder(hub, wf.id, 'o', 'running');
    const report = { ...refOf(offer.assignment), result: 1, outputs: [{ id: 'out', path: 's3://lake/out' }] };
    store.hold();
    const first = worker.request('task.complete', report);
    await store.holding.promise;
    // The SDK takes this STALE_ATTEMPT for the first try's success: it must not stand on a completion that is rolled back.
    const repeated = worker.request('task.complete', report);
    // Reports of one connection are read in order: once this note is applied, the repeat was checked.
    const marker = worker.request('agent.status', { note: 'after the repeat' });
    await untilTrue(() => hub.state.agents!.r!.note === 'after the repeat', 'the note applied');
    store.fail();
    expect((await Promise.all([first, repeated, marker])).map((reply) => reply.error?.code)).toEqual(['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect(hub.state.workflows.get(wf.id)!.workOrders.o!.state).toBe('running');
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
  it('keeps an agent whose disconnect could not be stored out of placement, and records the disconnect once writes work again', async () => {
    const log = logRecorder('warn');
    const { hub, store } = await failingHub(tempDir(), log.logger);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a disconnect not stored' });
    await wf.start();
    const gone = await agent(hub, { agentId: 'gone', agentType: 'w', logger: null });
    await gone.onTask('t', () => ({ result: 'never' }));
    store.failing = true;
    await gone.close();
    await log.until('could not record agent disconnect', { agentId: 'gone' });
    store.failing = false;

    // Its socket is gone: the order waits for an agent rather than being offered to it.
    await wf.createWorkOrder({ id: 'after', taskType: 't' });
    await hub.settle();
    const waiting = await wf.getWorkOrder('after');
    expect([waiting.state, waiting.history]).toEqual(['queued', []]);
    // The disconnect was recorded with the first write that worked.
    const recorded = await client.getAgent('gone');
    expect(typeof recorded.disconnectedSince).toBe('number');
    expect(recorded.stats.assigned).toBe(0);

    const live = await agent(hub, { agentId: 'live', agentType: 'w', logger: null });
    await live.onTask('t', () => ({ result: 'ok' }));
    const done = await untilOrder(hub, wf.id, 'after', 'completed');
    expect(done.history.map((attempt) => attempt.agentId)).toEqual(['live']);
  });
});

describe('a journal segment that cannot be created', () => {
  it('gives up the snapshot and goes on writing where it was: every acknowledged change survives a crash', async () => {
    const dataDir = tempDir();
    const warnings: string[] = [];
    const store = new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1024, onWarning: (m) => warnings.push(m) });
    const hub = await startHub({ dataDir }, { store });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'no next segment' });
    // The next segment's name is taken by a folder: the snapshot that falls due cannot rotate the journal.
    mkdirSync(join(dataDir, '00000002.journal'));
    const codes = [];
    for (let n = 1; n <= 12; n++) codes.push(await codeOf(wf.updateProgress('loading', n)));
    expect(codes).toEqual(Array(12).fill('resolved'));
    expect(warnings).toContainEqual(expect.stringMatching(/^snapshot failed, the journal is kept: EEXIST/));

    const crashed = crashCopy(dataDir);
    rmdirSync(join(crashed, '00000002.journal'));
    const again = await startHub({ dataDir: crashed });
    expect((await (await control(again)).workflow(wf.id).get()).stages.loading!.progress).toBe(12);
  });
});

describe('a failed journal write during a snapshot', () => {
  it('gives up the snapshot being written, keeping the journal, and the next one holds every acknowledged change', async () => {
    const dataDir = tempDir();
    const warnings: string[] = [];
    /** Holds the JSON of the documents the first snapshot serialises until `release` is called. */
    class HeldSnapshots extends FailingStore {
      private readonly gate = deferred();
      readonly started = deferred();
      taken = 0;
      release = () => this.gate.resolve();
      override startPinnedSnapshot = (pinned: PinnedDocs) => {
        const gate = this.gate.promise;
        const held = <T,>(chunks: AsyncIterable<T>) =>
          (async function* () {
            await gate;
            yield* chunks;
          })();
        this.taken++;
        this.started.resolve();
        this.inner.startPinnedSnapshot!({ ...pinned, docs: pinned.docs.map((d) => (d.json ? { ...d, json: { chunks: held(d.json.chunks), release: d.json.release } } : d)) });
      };
    }
    const embedded = new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 4096, onWarning: (m) => warnings.push(m) });
    const store = new HeldSnapshots(embedded);
    const hub = await startHub({ dataDir }, { store });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'snapshot under a full disk' });
    await wf.createWorkOrders(Array.from({ length: 100 }, (_, i) => ({ id: `o${i}`, taskType: 'later', description: 'x'.repeat(40) })));
    await store.started.promise;

    store.failing = true;
    expect(await codeOf(wf.updateProgress('loading', 50))).toBe('UNAVAILABLE');
    store.failing = false;
    store.release();
    await hub.settle();
    await embedded.snapshotSettled();
    expect(warnings).toEqual([expect.stringMatching(/^snapshot failed, the journal is kept: .*rolled back/)]);

    // The next snapshot serialises the workflow again; the directory as a crash leaves it then holds every acknowledged change.
    await wf.cancelWorkOrder('o3');
    for (let i = 0; store.taken < 2; i++) await wf.updateProgress('loading', 60 + (i % 40));
    await hub.settle();
    await embedded.snapshotSettled();
    expect(warnings).toHaveLength(1);
    const before = await wf.get();
    const copy = crashCopy(dataDir);
    client.close();
    await hub.close();
    const again = await startHub({ dataDir: copy });
    expect(await (await control(again)).workflow(wf.id).get()).toEqual(before);
    expect(before.workOrders['o3']?.state).toBe('cancelled');
  });
});

/** A hub whose writes can be held, and a started workflow past the size rendered on the event loop (two orders of 150 KB inputs). */
async function bigWorkflowWithHeldWrites() {
  const { hub, store } = await hubWithHeldWrites();
  const wf = await (await control(hub)).createWorkflow({ userQuery: 'big report' });
  await wf.start();
  await wf.createWorkOrders(['a', 'b'].map((id) => ({ id, taskType: 'nobody-serves-this', input: 'x'.repeat(150_000) })));
  return { hub, store, wf };
}

/** The stages a JSON report's workflow shows, sorted. */
function stagesOf(body: string): string[] {
  return Object.keys((JSON.parse(body) as { workflow: { stages: object } }).workflow.stages).sort();
}

describe('a failed journal write and big reports', () => {
  it('never serves a report of rolled-back changes at the version a later change takes, whether its render had ended or was under way', async () => {
    const { store, wf } = await bigWorkflowWithHeldWrites();
    const versionOf = async () => (await wf.summary()).version;

    // Under way: the first render waits for the report worker to start.
    store.hold();
    let refused = codeOf(wf.updateProgress('ghost', 20));
    await store.holding.promise;
    const ghostVersion = await versionOf();
    const inFlight = codeOf(wf.report('json'));
    // Answered after the report request on the same connection: its render has started.
    await wf.summary();
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');
    // Rolled back while its workflow was being read (UNAVAILABLE), or rendered from it all the same.
    expect(['resolved', 'UNAVAILABLE']).toContain(await inFlight);
    await wf.updateProgress('real', 30);
    let report = await wf.report('json');
    expect(report.version).toBe(ghostVersion);
    expect(stagesOf(report.body)).toEqual(['real']);

    // Ended: reads see changes applied but not yet stored, so this report shows the ghost stage.
    store.hold();
    refused = codeOf(wf.updateProgress('ghost', 40));
    await store.holding.promise;
    const ghost = await wf.report('json');
    expect(stagesOf(ghost.body)).toEqual(['ghost', 'real']);
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');
    // The next change takes the rolled-back version's number.
    await wf.updateProgress('again', 50);
    report = await wf.report('json');
    expect(report.version).toBe(ghost.version);
    expect(stagesOf(report.body)).toEqual(['again', 'real']);
  });
});
