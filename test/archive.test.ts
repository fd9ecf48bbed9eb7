import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { WorkflowHandle } from '../client-sdk/index.ts';
import type { HubParts, RunningHub } from '../server/index.ts';
import { codeOf } from './helpers/errors.ts';
import { rawGet } from './helpers/http.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { deferred, untilOrder, untilTrue } from './helpers/wait.ts';
import { FileArchive } from '../server/store/archive-files.ts';
import { EmbeddedStore } from '../server/index.ts';
import { HeldWrites } from './helpers/held-writes.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';
import { WrappedStore } from './helpers/wrapped-store.ts';

const KEEP = 60_000;

/** A hub whose clock the test moves, so that "ended long enough ago" is a step, not a wait. */
async function hubWithClock(dataDir: string, options: Record<string, unknown> = {}, parts: HubParts = {}) {
  const clock = { now: Date.now() };
  const hub = await startHub({ dataDir, keepFinishedMs: KEEP, sweepIntervalMs: 10, ...options }, { ...parts, clock: () => clock.now });
  return { hub, clock };
}

/** Moves the clock past keepFinishedMs and waits until the workflow has left memory. */
async function archived(hub: RunningHub, clock: { now: number }, workflowId: string): Promise<void> {
  clock.now += KEEP + 1;
  await untilTrue(() => !hub.state.workflows.has(workflowId), `workflow ${workflowId} archived`);
}

/** A workflow that used every kind of record: steps, objectives, KPIs, orders run by an agent, data, lineage. */
async function finishedWorkflow(hub: RunningHub): Promise<WorkflowHandle> {
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'archive me', config: { enableDataValidation: false } });
  await wf.start();
  const step = await wf.addStep({ name: 'load', description: 'load the rows' });
  await wf.startStep(step.id);
  await wf.completeStep(step.id, { rows: 3 });
  await wf.addObjective({ name: 'rows loaded', target: '3 rows' });
  const kpi = await wf.addKpi({ name: 'throughput', unit: 'rows/s', target: 10 });
  await wf.recordKpi(kpi.id, 12);
  await wf.recordKpi(kpi.id, 15);
  await wf.updateProgress('load', 100);
  const worker = await agent(hub, { agentId: 'archivist', agentType: 'worker', capabilities: ['clean'] });
  await worker.onTask('clean', () => ({ result: { kept: 3 } }));
  await wf.createWorkOrder({ id: 'done', taskType: 'clean', input: {} });
  await untilOrder(hub, wf.id, 'done', 'completed');
  await wf.createWorkOrder({ id: 'dropped', taskType: 'never', input: {} });
  await wf.cancelWorkOrder('dropped', 'not needed');
  await wf.addDataReference({ id: 'raw', path: 's3://bucket/raw.csv', tags: ['input'] });
  await wf.addDataReference({ id: 'clean', path: 's3://bucket/clean.csv', tags: ['output'] });
  await wf.linkLineage({ operation: 'clean', inputs: ['raw'], outputs: ['clean'], workOrderId: 'done' });
  await wf.complete();
  return wf;
}

/** Every read of a workflow, through the socket API and HTTP. */
async function everyRead(hub: RunningHub, workflowId: string) {
  const client = await control(hub);
  const wf = client.workflow(workflowId);
  const http = async (path: string) => {
    const reply = await rawGet(hub.url, path, TOKENS.admin);
    return { status: reply.status, body: reply.body };
  };
  return {
    get: await client.connection.request('workflow.get', { workflowId: wf.id }),
    summary: await wf.summary(),
    reports: await Promise.all((['json', 'markdown', 'html'] as const).map((format) => wf.report(format))),
    order: await wf.getWorkOrder('done'),
    orders: await wf.listWorkOrders({ limit: 1 }),
    cancelled: await wf.listWorkOrders({ state: 'cancelled' }),
    data: await wf.getDataReference('clean'),
    search: await wf.searchData({ tags: ['input'] }),
    upstream: await wf.upstream('clean'),
    downstream: await wf.downstream('raw'),
    graph: await wf.lineageGraph(),
    openLineage: await wf.openLineageEvent('done'),
    list: await client.listWorkflows({ status: 'completed' }),
    httpSummary: await http(`/api/workflows/${wf.id}/summary`),
    httpReport: await http(`/api/workflows/${wf.id}/report.md`),
    httpData: await http(`/api/workflows/${wf.id}/data?tag=output`),
    httpList: await http('/api/workflows?status=completed'),
  };
}

describe('archiving ended workflows', () => {
  it('moves an ended workflow to the archive after keepFinishedMs, and every read answers as before, byte for byte', async () => {
    const dataDir = tempDir();
    const { hub, clock } = await hubWithClock(dataDir);
    const wf = await finishedWorkflow(hub);
    const before = await everyRead(hub, wf.id);
    expect(before.get.workflow!.status).toBe('completed');

    await archived(hub, clock, wf.id);
    expect(existsSync(join(dataDir, 'archive', `${wf.id}.json`))).toBe(true);
    expect(await (await fetch(`${hub.url}/healthz`)).json()).toMatchObject({ workflows: 0, archivedWorkflows: 1 });
    const after = await everyRead(hub, wf.id);
    expect(after).toEqual(before);
    // The report bodies themselves, not only their hashes.
    expect(after.reports.map((r) => r.body)).toEqual(before.reports.map((r) => r.body));

    // A monitor gets the final state and version; a write is refused as for any ended workflow.
    const mirror = await (await monitor(hub)).subscribe(wf.id);
    expect(mirror.version).toBe(before.get.version);
    expect(mirror.state).toEqual(before.get.workflow!);
    expect(await codeOf(wf.recordKpi(Object.keys(before.get.workflow!.kpis)[0]!, 1))).toBe('INVALID_TRANSITION');
    expect(await codeOf(wf.createWorkOrder({ taskType: 'clean', input: {} }))).toBe('INVALID_TRANSITION');
    expect(await codeOf(wf.start())).toBe('INVALID_TRANSITION');
    expect(await codeOf(wf.updateDataReference('clean', { description: 'changed' }))).toBe('INVALID_TRANSITION');
    const client = await control(hub);
    expect(await codeOf(client.createWorkflow({ id: wf.id, userQuery: 'same id' }))).toBe('CONFLICT');
    expect(await codeOf(client.workflow('wf_unknown').summary())).toBe('NOT_FOUND');
  });

  it("answers an agent's repeated report on a workflow archived since STALE_ATTEMPT with how its attempts ended, read from the archive", async () => {
    const { hub, clock } = await hubWithClock(tempDir());
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'reports after archiving' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'late-1', ['t']);
    await wf.createWorkOrder({ id: 'o', taskType: 't' });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    const ref = refOf(offer.assignment);
    // The first completion lands; its answer is taken as lost, and the agent is away past keepFinishedMs.
    expect(await worker.request('task.complete', { ...ref, result: 1 })).toMatchObject({ ok: true });
    await wf.complete();
    await archived(hub, clock, wf.id);

    for (const [event, payload] of [
      ['task.complete', { ...ref, result: 1 }],
      ['task.fail', { ...ref, error: 'late', retryable: true }],
      ['task.progress', { ...ref, progress: 50 }],
      ['data.register', { ...ref, id: 'late-data', path: 's3://bucket/late.csv' }],
    ] as const) {
      const repeated = await worker.request(event, payload);
      expect(repeated, event).toMatchObject({ ok: false, error: { code: 'STALE_ATTEMPT', attempts: [{ number: 1, outcome: 'completed' }] } });
    }
    // An order the archived workflow never had is answered as such.
    expect(await worker.request('task.complete', { ...ref, workOrderId: 'nope', result: 1 })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect((await wf.getWorkOrder('o')).result).toBe(1);
  });

  it('keeps an archived workflow out of memory, the snapshot and the journal across a restart, and still answers for it', async () => {
    const dataDir = tempDir();
    const first = await hubWithClock(dataDir);
    const wf = await finishedWorkflow(first.hub);
    const before = await everyRead(first.hub, wf.id);
    await archived(first.hub, first.clock, wf.id);
    await first.hub.close();
    expect(readFileSync(join(dataDir, 'snapshot.json'), 'utf8')).not.toContain(wf.id);

    const { hub } = await hubWithClock(dataDir);
    expect(hub.state.workflows.has(wf.id)).toBe(false);
    // First, before anything reads the workflow itself: the summary archived beside it.
    expect(await (await control(hub)).workflow(wf.id).summary()).toEqual(before.summary);
    expect((await rawGet(hub.url, `/api/workflows/${wf.id}/summary`, TOKENS.admin)).body).toEqual(before.httpSummary.body);
    const after = await everyRead(hub, wf.id);
    expect(after.reports.map((r) => r.body)).toEqual(before.reports.map((r) => r.body));
    expect(after.get).toEqual(before.get);
    expect(after.summary).toEqual(before.summary);
  });

  it('answers INTERNAL for an archived file edited on disk, and logs it for the operator, over sockets and HTTP', async () => {
    const dataDir = tempDir();
    const first = await hubWithClock(dataDir);
    const wf = await (await control(first.hub)).createWorkflow({ userQuery: 'edit me later' });
    await wf.start();
    await wf.complete();
    await archived(first.hub, first.clock, wf.id);
    await first.hub.close();
    const file = join(dataDir, 'archive', `${wf.id}.json`);
    writeFileSync(file, readFileSync(file, 'utf8').replaceAll('edit me later', 'edited on disk'));
    const log = logRecorder('warn');
    const { hub } = await hubWithClock(dataDir, {}, { logger: log.logger });
    const client = await control(hub);

    const refused = await client.connection.request('workflow.get', { workflowId: wf.id }).catch((error: unknown) => error);
    // The client is told which workflow and why; where it lies on the hub's machine is for the log only.
    expect(refused).toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(`archived workflow ${wf.id} is damaged`) });
    expect((refused as Error).message).not.toContain(dataDir);
    const logged = await log.until('request failed: the hub could not serve it', { event: 'workflow.get' });
    expect(logged).toMatchObject({ level: LEVEL.error, reason: expect.stringContaining(`${file} is damaged`) });

    expect((await rawGet(hub.url, `/api/workflows/${wf.id}/report.md`, TOKENS.admin)).status).toBe(500);
    const route = await log.until('http route failed: the hub could not serve it');
    expect(route).toMatchObject({ level: LEVEL.error, path: `/api/workflows/${wf.id}/report.md`, reason: expect.stringContaining('is damaged') });
  });

  it('lists archived and live workflows together in creation order, by status and a page at a time', async () => {
    const { hub, clock } = await hubWithClock(tempDir());
    const client = await control(hub);
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) {
      clock.now += 1;
      const wf = await client.createWorkflow({ userQuery: `w${i}` });
      ids.push(wf.id);
      if (i % 3 === 0) await wf.cancel('done with it');
      else if (i % 3 === 1) await wf.start();
    }
    clock.now += KEEP + 1;
    const cancelled = ids.filter((_, i) => i % 3 === 0);
    await untilTrue(() => cancelled.every((id) => !hub.state.workflows.has(id)), 'cancelled workflows archived');
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listWorkflows(cursor ? { limit: 2, cursor } : { limit: 2 });
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect((await client.listWorkflows({ status: 'cancelled' })).items.map((w) => w.id)).toEqual(cancelled);
    expect((await client.listWorkflows({ status: 'in_progress' })).items.map((w) => w.id)).toEqual(ids.filter((_, i) => i % 3 === 1));
    expect(await codeOf(client.listWorkflows({ cursor: 'wf_gone' }))).toBe('VALIDATION');
  });

  it('pages through workflows created in the same millisecond by id, neither skipping nor repeating one archived between pages', async () => {
    const { hub, clock } = await hubWithClock(tempDir());
    const client = await control(hub);
    // All created at one clock reading, as a script creating many in parallel does.
    const made = new Map<string, WorkflowHandle>();
    for (const id of ['a', 'b', 'c', 'd', 'e']) made.set(id, await client.createWorkflow({ id, userQuery: id }));
    const page = async (limit: number, cursor?: string) => {
      const reply = await client.listWorkflows(cursor === undefined ? { limit } : { limit, cursor });
      return { ids: reply.items.map((item) => item.id), cursor: reply.nextCursor ?? undefined };
    };
    expect((await page(10)).ids).toEqual(['a', 'b', 'c', 'd', 'e']);

    const first = await page(1);
    expect(first).toEqual({ ids: ['a'], cursor: 'a' });
    // b, never shown, is archived after a live cursor at its millisecond: the next page still holds it.
    await made.get('b')!.cancel();
    await archived(hub, clock, 'b');
    const second = await page(2, first.cursor);
    expect(second).toEqual({ ids: ['b', 'c'], cursor: 'c' });
    // The cursor c is archived in its turn: the next page does not show a or b again.
    await made.get('c')!.cancel();
    await archived(hub, clock, 'c');
    expect(await page(10, second.cursor)).toEqual({ ids: ['d', 'e'], cursor: undefined });
    expect((await page(10)).ids).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('pages by creation time after the clock stepped back, either way, neither skipping nor repeating a workflow archived between pages', async () => {
    const { hub, clock } = await hubWithClock(tempDir());
    const client = await control(hub);
    const made = new Map<string, WorkflowHandle>();
    const create = async (id: string) => made.set(id, await client.createWorkflow({ id, userQuery: id }));
    await create('x');
    clock.now += 100;
    await create('y');
    // The clock steps back: z is created after y, yet earlier by createdAt.
    clock.now -= 50;
    await create('z');
    const page = async (order: 'asc' | 'desc', cursor?: string) => {
      const reply = await client.listWorkflows({ order, limit: 1, ...(cursor === undefined ? {} : { cursor }) });
      return { ids: reply.items.map((item) => item.id), cursor: reply.nextCursor ?? undefined };
    };
    expect((await client.listWorkflows()).items.map((w) => w.id)).toEqual(['x', 'z', 'y']);
    expect((await client.listWorkflows({ order: 'desc' })).items.map((w) => w.id)).toEqual(['y', 'z', 'x']);

    // Oldest first: the cursor x stays live, y (not yet shown) and then the cursor z are archived.
    const first = await page('asc');
    await made.get('y')!.cancel();
    await archived(hub, clock, 'y');
    const second = await page('asc', first.cursor);
    await made.get('z')!.cancel();
    await archived(hub, clock, 'z');
    const third = await page('asc', second.cursor);
    expect([first, second, third]).toEqual([
      { ids: ['x'], cursor: 'x' },
      { ids: ['z'], cursor: 'z' },
      { ids: ['y'], cursor: undefined },
    ]);

    // Newest first, with x archived after the first page.
    const newest = await page('desc');
    await made.get('x')!.cancel();
    await archived(hub, clock, 'x');
    const next = await page('desc', newest.cursor);
    expect([newest, next, await page('desc', next.cursor)]).toEqual([
      { ids: ['y'], cursor: 'y' },
      { ids: ['z'], cursor: 'z' },
      { ids: ['x'], cursor: undefined },
    ]);
  });

  it('goes on archiving the other workflows when one cannot be written, logs it once per try, and archives it once it can', async () => {
    const dataDir = tempDir();
    const log = logRecorder();
    let refuse = true;
    /** An archive whose file for workflow `stuck` cannot be written while `refuse` holds (a damaged disk sector, a bug). */
    class RefusingStore extends WrappedStore {
      override get archive() {
        const archive = this.inner.archive;
        return new Proxy(archive, {
          get: (target, key) => {
            if (key === 'put') return (...args: Parameters<typeof archive.put>) => (refuse && args[0].header.id === 'stuck' ? Promise.reject(new Error('EIO: i/o error, write')) : target.put(...args));
            const value = Reflect.get(target, key, target) as unknown;
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      }
    }
    const store = new RefusingStore(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 32 * 1024 * 1024, onWarning: () => undefined }));
    const { hub, clock } = await hubWithClock(dataDir, {}, { store, logger: log.logger });
    const client = await control(hub);
    // The one that fails is the oldest: every pass meets it first.
    for (const id of ['stuck', 'next', 'last']) await (await client.createWorkflow({ id, userQuery: id })).cancel();
    clock.now += KEEP + 1;
    await untilTrue(() => !hub.state.workflows.has('next') && !hub.state.workflows.has('last'), 'the others archived');
    expect(hub.state.workflows.has('stuck')).toBe(true);
    const failure = await log.until('archiving a workflow failed: it stays in memory and is tried again later');
    expect(failure).toMatchObject({ level: LEVEL.error, workflowId: 'stuck', failures: 1, retryInMs: 1_000 });
    expect((await client.workflow('stuck').summary()).status).toBe('cancelled');

    refuse = false;
    await archived(hub, clock, 'stuck');
    expect((await client.workflow('stuck').summary()).status).toBe('cancelled');
  });

  it('deletes archived workflows past retentionMs, and prunes by hand saying what it removed', async () => {
    const dataDir = tempDir();
    const { hub, clock } = await hubWithClock(dataDir, { retentionMs: 3_600_000 });
    const client = await control(hub);
    const old = await client.createWorkflow({ userQuery: 'old' });
    await old.cancel();
    await archived(hub, clock, old.id);
    clock.now += 1_800_000;
    const young = await client.createWorkflow({ userQuery: 'young' });
    await young.cancel();
    await archived(hub, clock, young.id);
    const live = await client.createWorkflow({ userQuery: 'live' });

    // An hour after the first ended: it goes, the second (half an hour younger) stays.
    clock.now += 1_800_000;
    await untilTrue(() => !existsSync(join(dataDir, 'archive', `${old.id}.json`)), 'retention deleted the old workflow');
    expect(await codeOf(old.summary())).toBe('NOT_FOUND');
    expect((await young.summary()).status).toBe('cancelled');

    const removed = await client.pruneArchive(60_000);
    expect(removed).toEqual([{ workflowId: young.id, status: 'cancelled', endedAt: expect.any(Number) }]);
    expect(await codeOf(young.summary())).toBe('NOT_FOUND');
    expect((await client.listWorkflows()).items.map((w) => w.id)).toEqual([live.id]);
    expect(await client.pruneArchive(0)).toEqual([]);
    expect(await codeOf(client.connection.request('archive.prune', { olderThanMs: -1 } as never))).toBe('VALIDATION');
  });

  it('does not hold a change behind the read of a big archived workflow: sent after the read, it is acknowledged first', async () => {
    const { hub, clock } = await hubWithClock(tempDir());
    const client = await control(hub);
    const big = await client.createWorkflow({ userQuery: 'a big one to archive' });
    const padding = 'x'.repeat(400);
    for (let first = 0; first < 6000; first += 1000) {
      await big.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this', description: padding })));
    }
    await big.cancel('to be archived');
    const live = await client.createWorkflow({ userQuery: 'still going' });
    await live.start();
    await archived(hub, clock, big.id);

    const finished: string[] = [];
    // One connection: the hub takes the read first (it loads the workflow from the archive), then the change.
    const read = big.getWorkOrder('o5999').then((order) => (finished.push('read'), order));
    const change = live.updateProgress('loading', 10).then(() => finished.push('change'));
    const [order] = await Promise.all([read, change]);
    expect(finished).toEqual(['change', 'read']);
    expect(order).toMatchObject({ id: 'o5999', state: 'cancelled', description: padding });
  });

  it('does not keep a workflow deleted while it was read from the archive: its summary is gone, and a new one with its id is answered', async () => {
    const { hub, clock } = await hubWithClock(tempDir());
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf-reused', userQuery: 'the first' });
    await wf.cancel();
    await archived(hub, clock, wf.id);
    // The read of the archived file ends only once the workflow has been deleted meanwhile.
    const gate = deferred();
    const read = FileArchive.prototype.read;
    const spy = vi.spyOn(FileArchive.prototype, 'read').mockImplementationOnce(async function (this: FileArchive, id: string) {
      const result = await read.call(this, id);
      await gate.promise;
      return result;
    });
    const reading = wf.get();
    await untilTrue(() => spy.mock.calls.length === 1, 'the archive read started');
    expect(await client.pruneArchive(0)).toHaveLength(1);
    gate.resolve();
    expect((await reading).userQuery).toBe('the first');
    expect(await codeOf(wf.summary())).toBe('NOT_FOUND');

    const again = await client.createWorkflow({ id: 'wf-reused', userQuery: 'the second' });
    await again.cancel();
    await archived(hub, clock, again.id);
    expect((await again.get()).userQuery).toBe('the second');
  });

  it("does not fail an order of a workflow that took a deleted one's id on the deleted order's overall timeout", async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 20 });
    const client = await control(hub);
    // An order nobody can take, with a short overall timeout, cancelled at once with its workflow.
    const first = await client.createWorkflow({ id: 'wf-reused', userQuery: 'the first' });
    await first.start();
    await first.createWorkOrder({ id: 'job', taskType: 'nobody', timeouts: { overallMs: 1500 } });
    await first.cancel('not needed');
    await untilTrue(() => !hub.state.workflows.has('wf-reused'), 'the first workflow to leave memory');
    expect(await client.pruneArchive(0)).toMatchObject([{ workflowId: 'wf-reused' }]);
    // The same ids again, with a long overall timeout; a probe created later with the first one's has timed out once the first order's timer is due.
    const second = await client.createWorkflow({ id: 'wf-reused', userQuery: 'the second' });
    await second.start();
    await second.createWorkOrder({ id: 'job', taskType: 'nobody', timeouts: { overallMs: 600_000 } });
    await second.createWorkOrder({ id: 'probe', taskType: 'nobody', timeouts: { overallMs: 1500 } });
    await untilOrder(hub, 'wf-reused', 'probe', 'failed');
    expect(await second.getWorkOrder('job')).toMatchObject({ state: 'queued', error: null });
  });

  it('answers with the newest archived copy of a workflow whose eviction was rolled back, changed, and archived again', async () => {
    const dataDir = tempDir();
    const store = new HeldWrites(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
    onTestFinished(() => store.release());
    const { hub, clock } = await hubWithClock(dataDir, {}, { store });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'evicted, then not' });
    const kpi = await wf.addKpi({ name: 'rows', unit: 'rows', target: 10 });
    await wf.cancel('done');
    // The eviction is applied but not stored: a read meanwhile loads the archived copy.
    store.hold();
    clock.now += KEEP + 1;
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the eviction applied');
    await wf.get();
    clock.now -= KEEP + 1;
    store.fail();
    await untilTrue(() => hub.state.workflows.has(wf.id), 'the eviction rolled back');
    // Back in memory, the ended workflow still takes a KPI: an acknowledged change the archive must answer with.
    await wf.recordKpi(kpi.id, 12);
    const before = { get: await client.connection.request('workflow.get', { workflowId: wf.id }), summary: await wf.summary() };
    expect(before.summary.kpis.met).toBe(1);
    await archived(hub, clock, wf.id);
    expect({ get: await client.connection.request('workflow.get', { workflowId: wf.id }), summary: await wf.summary() }).toEqual(before);
  });

  it('refuses to start empty where the snapshot and manifest were deleted but the archive shows the directory was used', async () => {
    const dataDir = tempDir();
    const { hub, clock } = await hubWithClock(dataDir);
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'archived, then the state deleted' });
    await wf.cancel();
    await archived(hub, clock, wf.id);
    await hub.close();
    for (const name of ['manifest.json', 'snapshot.json']) rmSync(join(dataDir, name));
    const refusal = await startHub({ dataDir }).then(() => 'started', (error: Error) => error.message);
    expect(refusal).toBe(`${join(dataDir, 'manifest.json')} and ${join(dataDir, 'snapshot.json')} are missing, yet ${join(dataDir, 'archive')} holds archived workflows: the state of this data directory was deleted; restore them, or move the data directory aside to start empty`);
  });

  it('answers UNAVAILABLE, saying why, while the archive index cannot be read, and serves once it can', async () => {
    const dataDir = tempDir();
    // A directory a hub has used: one with an archive but no manifest would be refused as deleted state.
    await (await startHub({ dataDir })).close();
    // A damaged index is rebuilt from the files and written anew: a folder where that write goes makes it fail.
    const blocker = join(dataDir, 'archive', '.index.jsonl.tmp');
    mkdirSync(blocker, { recursive: true });
    writeFileSync(join(dataDir, 'archive', 'index.jsonl'), 'not an index line\n');
    const { hub } = await hubWithClock(dataDir);
    const client = await control(hub);
    for (const request of [client.pruneArchive(0), client.listWorkflows(), client.workflow('wf_unknown').summary()]) {
      const error = await request.then(() => undefined, (error: unknown) => error);
      expect(error).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('archive index') });
    }
    rmdirSync(blocker);
    expect((await client.listWorkflows()).items).toEqual([]);
    expect(await client.pruneArchive(0)).toEqual([]);
  });
});
