import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { NonRetryableError, type ControlClient, type Mirror, type MonitorClient, type ViewSpec, type WorkflowHandle } from '../client-sdk/index.ts';
import type { RunningHub } from '../server/index.ts';
import { ViewSpec as ViewSpecSchema } from '../shared/schemas/views.ts';
import type { WorkOrderState } from '../shared/schemas/work-order.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { WorkflowCatalog } from '../server/domain/work/workflow-catalog.ts';
import { summaryView, viewOf } from '../server/domain/workflows/views.ts';
import { applyPatch } from '../shared/patch.ts';
import { MAX_VIEWS_PER_WORKFLOW } from '../server/transport/view-streams.ts';
import { codeOf } from './helpers/errors.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { deferred, untilTrue } from './helpers/wait.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { connectRaw } from './helpers/raw-socket.ts';

/**
 * A view computed from the hub's state as it is now, with a catalog built afresh from the
 * document: the same pure function the hub uses, without the catalog the hub keeps up to date.
 */
function viewNow(hub: RunningHub, workflowId: string, spec: ViewSpec): unknown {
  const workflow = hub.state.workflows.get(workflowId) as unknown as Workflow;
  return structuredClone(viewOf(workflow, WorkflowCatalog.of(workflow), ViewSpecSchema.parse(spec)));
}

/**
 * Waits until everything is on disk and the mirror has caught up, then checks that it equals the
 * view computed from the hub's state at a version no later than the hub's. Callers make sure
 * nothing changes the workflow meanwhile, so that the view at the mirror's version is the view now.
 */
async function expectViewInSync(hub: RunningHub, mirror: Mirror, workflowId: string, spec: ViewSpec): Promise<void> {
  await hub.settle();
  const expected = viewNow(hub, workflowId, spec);
  const version = hub.state.versions.get(workflowId)!;
  const what = `${mirror.doc} equal to the hub's view at version ${version}`;
  // On a timeout, the comparison below shows how they differ.
  await mirror.until((state) => isDeepStrictEqual(state, expected), { what, timeoutMs: 10_000 }).catch(() => undefined);
  expect(mirror.state, what).toEqual(expected);
  expect(mirror.version).toBeLessThanOrEqual(version);
}

/** Records how each change reached a mirror: a snapshot or patches. */
function kindsOf(mirror: Mirror): string[] {
  const kinds: string[] = [];
  mirror.on('change', (c) => kinds.push(c.snapshot ? 'snapshot' : 'patches'));
  return kinds;
}

/** Drops a client's connection as a network failure would; resolves once it is down, with its return. */
async function dropConnection(client: MonitorClient): Promise<{ back: Promise<void> }> {
  const gone = deferred();
  client.connection.socket.once('disconnect', () => gone.resolve());
  const back = new Promise<void>((resolve) => client.connection.socket.once('connect', () => resolve()));
  client.connection.socket.io.engine.close();
  await gone.promise;
  return { back };
}

/** An agent that completes every task, or fails it for good when its input says `fail`. */
async function worker(hub: RunningHub, agentId = 'worker', maxConcurrentTasks = 4) {
  const client = await agent(hub, { agentId, agentType: 'w', maxConcurrentTasks, progressIntervalMs: 1, logger: null });
  await client.onTask('*', async (task, ctx) => {
    await ctx.progress(50, 'half way');
    if ((task.input as { fail?: boolean } | null)?.fail) throw new NonRetryableError('asked to fail');
    return { result: { done: task.workOrderId } };
  });
  return client;
}

/** A started workflow, a monitor following its whole document, and a wait for its orders to settle. */
async function runningWorkflow(hub: RunningHub, id = 'wf') {
  const client = await control(hub);
  const wf = await client.createWorkflow({ id, userQuery: 'views' });
  await wf.start();
  const document = await (await monitor(hub, TOKENS.admin)).subscribe(wf.id);
  /** Resolves once every order the hub acknowledged so far is completed, failed or cancelled. */
  const settled = async () => {
    const version = (await wf.summary()).version;
    await document.until(({ workOrderCounts: c }, at) => at >= version && c.pending + c.blocked + c.queued + c.offered + c.running === 0, { what: 'every order finished' });
  };
  return { client, wf, settled };
}

/** Creates orders of a task type in one request; some ask to fail. */
function createOrders(wf: WorkflowHandle, taskType: string, ids: string[], failing: (id: string) => boolean = () => false) {
  return wf.createWorkOrders(ids.map((id) => ({ id, taskType, input: { fail: failing(id) } })));
}

/** A workflow with `count` queued orders, created a thousand per request (the most one takes). */
async function workflowOfOrders(client: ControlClient, count: number): Promise<WorkflowHandle> {
  const wf = await client.createWorkflow({ userQuery: `${count} orders` });
  for (let at = 0; at < count; at += 1000) await createOrders(wf, 'embed', Array.from({ length: Math.min(1000, count - at) }, (_, i) => `o${at + i}`));
  return wf;
}

/** How many times each outcome occurs. */
function countsOf(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

const SUMMARY: ViewSpec = { kind: 'summary' };
const NEWEST: ViewSpec = { kind: 'orders', limit: 10 };
const FAILED: ViewSpec = { kind: 'orders', state: 'failed' };
const PARSED: ViewSpec = { kind: 'orders', taskType: 'parse', state: 'completed', limit: 5 };

describe('views of a workflow', () => {
  it('keeps a summary view and orders views equal to the views of the hub’s state while orders are created, run, fail and complete', async () => {
    const hub = await startHub();
    const { wf, settled } = await runningWorkflow(hub);
    const watcher = await monitor(hub);
    const summary = await watcher.subscribe(wf.id, { view: { kind: 'summary' } });
    const newest = await watcher.subscribe(wf.id, { view: NEWEST });
    const failed = await watcher.subscribe(wf.id, { view: FAILED });
    const parsed = await watcher.subscribe(wf.id, { view: PARSED });
    const kinds = [summary, newest, failed, parsed].map(kindsOf);
    expect(summary.state).toMatchObject({ id: wf.id, status: 'in_progress', workOrderCounts: { queued: 0 }, workOrderCountsByTaskType: {} });
    expect(newest.state).toEqual({ total: 0, ids: [], orders: {} });

    await worker(hub);
    for (let batch = 0; batch < 4; batch++) {
      await createOrders(wf, batch % 2 ? 'parse' : 'embed', Array.from({ length: 8 }, (_, i) => `b${batch}-${i}`), (id) => id.endsWith('3') || id.endsWith('6'));
    }
    const kpi = await wf.addKpi({ name: 'accuracy', target: 0.9 });
    await wf.recordKpi(kpi.id, 0.7);
    await wf.addDataReference({ id: 'raw', path: 's3://bucket/raw.csv' });
    await settled();

    await expectViewInSync(hub, summary, wf.id, SUMMARY);
    await expectViewInSync(hub, newest, wf.id, NEWEST);
    await expectViewInSync(hub, failed, wf.id, FAILED);
    await expectViewInSync(hub, parsed, wf.id, PARSED);
    expect(summary.state).toMatchObject({ workOrderCounts: { completed: 24, failed: 8 }, dataCount: 1, agentCount: 1 });
    expect(summary.state!.workOrderCountsByTaskType.parse).toMatchObject({ completed: 12, failed: 4 });
    expect(summary.state!.kpis[kpi.id]!.history.map((s) => s.value)).toEqual([0.7]);
    expect(newest.state!.ids).toEqual(['b3-7', 'b3-6', 'b3-5', 'b3-4', 'b3-3', 'b3-2', 'b3-1', 'b3-0', 'b2-7', 'b2-6']);
    expect(failed.state!.total).toBe(8);
    expect(parsed.state).toMatchObject({ total: 12, ids: ['b3-7', 'b3-5', 'b3-4', 'b3-2', 'b3-1'] });
    // After its first snapshot each mirror was kept by patches alone.
    for (const kind of kinds) expect(kind).not.toContain('snapshot');
  });

  it('names each view canonically; its patches carry that name, and unsubscribing by it stops them', async () => {
    const hub = await startHub();
    const { wf } = await runningWorkflow(hub);
    const watcher = await monitor(hub);
    const view = await watcher.subscribe(wf.id, { view: { kind: 'orders', limit: 50, state: 'queued', taskType: 'a b' } });
    expect(view.doc).toBe(`${wf.id}/orders?state=queued&taskType=a%20b`);
    const document = await watcher.subscribe(wf.id);
    const names: string[] = [];
    watcher.connection.socket.on('patch', (message: { doc: string }) => names.push(message.doc));
    await wf.createWorkOrder({ id: 'one', taskType: 'a b' });
    await view.until((state) => state.total === 1, { what: 'the order in the view' });
    expect(names).toContain(view.doc);

    await watcher.unsubscribe(view.doc);
    names.length = 0;
    await wf.createWorkOrder({ id: 'two', taskType: 'a b' });
    await document.until((state) => Object.hasOwn(state.workOrders, 'two'), { what: 'order two' });
    // A later broadcast: anything about the view would have come before it.
    await wf.updateProgress('after', 1);
    await document.until((state) => state.stages.after !== undefined, { what: 'the stage' });
    expect(names.filter((name) => name === view.doc)).toEqual([]);
  });

  it('lets one connection follow at most 64 views of a workflow: another is refused until it unsubscribes from one; the same view again is not another', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'many views' });
    const watcher = await monitor(hub);
    const views: Mirror[] = [];
    for (let limit = 1; limit <= 64; limit++) views.push(await watcher.subscribe(wf.id, { view: { kind: 'orders', limit } }));
    const refused = watcher.subscribe(wf.id, { view: { kind: 'orders', limit: 65 } });
    await expect(refused).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('at most 64 views of one workflow') });
    // The same view again, the workflow itself, a view of another workflow, and one on another connection are still answered.
    const other = await (await control(hub)).createWorkflow({ userQuery: 'another' });
    expect((await watcher.subscribe(other.id, { view: { kind: 'summary' } })).state).toMatchObject({ id: other.id });
    expect((await watcher.subscribe(wf.id, { view: { kind: 'orders', limit: 1 } })).doc).toBe(views[0]!.doc);
    expect((await watcher.subscribe(wf.id)).version).toBeGreaterThan(0);
    expect((await (await monitor(hub)).subscribe(wf.id, { view: { kind: 'orders', limit: 65 } })).state).toMatchObject({ total: 0 });
    await watcher.unsubscribe(views[5]!.doc);
    expect((await watcher.subscribe(wf.id, { view: { kind: 'orders', limit: 65 } })).state).toMatchObject({ total: 0 });
  });

  it('holds the bound exactly when one connection asks for more views of a big workflow than it allows at once, each waiting for its catalog', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // Past the size whose catalog is built at once: every subscribe below waits for the build before it joins.
    const big = await workflowOfOrders(client, 1001);
    const watcher = await monitor(hub);
    const outcomes = await Promise.all(Array.from({ length: MAX_VIEWS_PER_WORKFLOW + 6 }, (_, i) => codeOf(watcher.subscribe(big.id, { view: { kind: 'orders', limit: i + 1 } }))));
    expect(countsOf(outcomes)).toEqual({ resolved: MAX_VIEWS_PER_WORKFLOW, VALIDATION: 6 });
    // It follows exactly as many as the bound: one more view is refused, one it follows is not another.
    expect(await codeOf(watcher.subscribe(big.id, { view: { kind: 'summary' } }))).toBe('VALIDATION');
    expect(await codeOf(watcher.subscribe(big.id, { view: { kind: 'orders', limit: outcomes.indexOf('resolved') + 1 } }))).toBe('resolved');
  });

  it('keeps a connection out of a view it unsubscribed from while its subscription waited for the catalog', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // Big enough that its catalog takes several turns: the unsubscribe is read while the subscribe waits.
    const big = await workflowOfOrders(client, 5000);
    const socket = await connectRaw(hub.url, 'monitor');
    const names: string[] = [];
    socket.on('patch', (message: { doc: string }) => names.push(message.doc));
    const view = { kind: 'orders', state: 'cancelled' };
    const subscribed = socket.emitWithAck('subscribe', { doc: big.id, view });
    const unsubscribed = socket.emitWithAck('unsubscribe', { doc: `${big.id}/orders?state=cancelled` });
    expect((await unsubscribed).ok).toBe(true);
    expect((await subscribed).data).toMatchObject({ doc: `${big.id}/orders?state=cancelled`, state: { total: 0 } });
    // The summary view, which it still follows, changes in the same broadcast as the orders view would.
    expect((await socket.emitWithAck('subscribe', { doc: big.id, view: { kind: 'summary' } })).ok).toBe(true);
    await big.cancelWorkOrder('o1');
    await untilTrue(() => names.includes(`${big.id}/summary`), 'the summary view patched');
    expect((await socket.emitWithAck('unsubscribe', { doc: `${big.id}/summary` })).ok).toBe(true);
    expect(names).toEqual([`${big.id}/summary`]);
  });

  it('sends a view over 1 MB as a transfer, live or archived, which the SDK reads into its mirror', async () => {
    const clock = { now: Date.now() };
    const hub = await startHub({ keepFinishedMs: 60_000, sweepIntervalMs: 10 }, { clock: () => clock.now });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'big inputs' });
    // Five orders of 250 KB: the view of them is over 1 MB, the workflow too.
    for (let i = 0; i < 5; i++) await wf.createWorkOrder({ id: `big-${i}`, taskType: 'embed', input: 'x'.repeat(250_000) });
    const watcher = await monitor(hub);
    const raw = await watcher.connection.request('subscribe', { doc: wf.id, view: NEWEST });
    expect(raw).toMatchObject({ mode: 'snapshot', transfer: { parts: 2 } });
    expect(raw).not.toHaveProperty('state');
    const mirror = await watcher.subscribe(wf.id, { view: NEWEST });
    expect(mirror.state).toEqual(viewNow(hub, wf.id, NEWEST));
    const expected = viewNow(hub, wf.id, NEWEST);
    await wf.cancel();
    clock.now += 60_001;
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow archived');
    const archived = await watcher.connection.request('subscribe', { doc: wf.id, view: NEWEST });
    expect(archived).toMatchObject({ mode: 'snapshot', transfer: { parts: 2 } });
    const again = await (await monitor(hub)).subscribe(wf.id, { view: NEWEST });
    expect(again.state).toMatchObject({ total: 5, ids: (expected as { ids: string[] }).ids });
  });

  it('keeps no mirror of a view unsubscribed from before its subscription was answered, nor follows it again after a reconnect', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'unsubscribed early' });
    const watcher = await monitor(hub);
    const pending = watcher.subscribe(wf.id, { view: SUMMARY });
    await watcher.unsubscribe(`${wf.id}/summary`);
    expect((await pending).state).toMatchObject({ id: wf.id });
    expect([...watcher.docs.keys()]).toEqual([]);
    const { back } = await dropConnection(watcher);
    await back;
    // Followed again after the reconnect, the view would come back as a mirror (and on the hub, a room).
    const other = await watcher.subscribe(wf.id);
    expect([...watcher.docs.keys()]).toEqual([other.doc]);
    const names: string[] = [];
    watcher.connection.socket.on('patch', (message: { doc: string }) => names.push(message.doc));
    await wf.start();
    await other.until((state) => state.status === 'in_progress', { what: 'the workflow started' });
    expect(names).toEqual([wf.id]);
  });

  it('answers a subscription with the view’s version held with only the patches missed since, which bring it to the view now', async () => {
    const hub = await startHub();
    const { wf } = await runningWorkflow(hub);
    await createOrders(wf, 'embed', ['a', 'b']);
    const raw = (await monitor(hub)).connection;
    const first = await raw.request('subscribe', { doc: wf.id, view: NEWEST });
    expect(first).toMatchObject({ doc: `${wf.id}/orders?limit=10`, mode: 'snapshot' });
    if (first.mode !== 'snapshot') throw new Error('expected a snapshot');
    await createOrders(wf, 'embed', ['c']);
    await wf.cancelWorkOrder('a');
    await hub.settle();
    const resumed = await raw.request('subscribe', { doc: wf.id, view: NEWEST, version: first.version, epoch: first.epoch });
    expect(resumed).toMatchObject({ mode: 'patches', from: first.version, to: hub.state.versions.get(wf.id) });
    if (resumed.mode !== 'patches') throw new Error('expected patches');
    expect(applyPatch(first.state, resumed.ops)).toEqual(viewNow(hub, wf.id, NEWEST));
    // The page's list of ids is replaced; the cancelled order is patched field by field.
    expect(resumed.ops.some((op) => op.path === '/orders/a/state')).toBe(true);
  });

  it('resumes a view after a reconnect with the patches it missed, not a snapshot', async () => {
    const hub = await startHub();
    const { wf } = await runningWorkflow(hub);
    const watcher = await monitor(hub);
    const summary = await watcher.subscribe(wf.id, { view: SUMMARY });
    const newest = await watcher.subscribe(wf.id, { view: NEWEST });
    const kinds = [summary, newest].map(kindsOf);
    const { back } = await dropConnection(watcher);
    await createOrders(wf, 'embed', ['x', 'y', 'z']);
    await wf.updateProgress('load', 30);
    await back;
    await expectViewInSync(hub, summary, wf.id, SUMMARY);
    await expectViewInSync(hub, newest, wf.id, NEWEST);
    for (const kind of kinds) expect(kind).toEqual(['patches']);
  });

  it('follows each page view again after a reconnect when the caller reused one spec object for the next page', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'paged orders' });
    await createOrders(wf, 'nobody-serves-this', ['o1']);
    await createOrders(wf, 'nobody-serves-this', ['o2']);
    const watcher = await monitor(hub);
    const page: { kind: 'orders'; limit: number; before?: string } = { kind: 'orders', limit: 1 };
    const first = await watcher.subscribe(wf.id, { view: page });
    expect(first.state?.ids).toEqual(['o2']);
    page.before = 'o2';
    const second = await watcher.subscribe(wf.id, { view: page });
    expect(second.state?.ids).toEqual(['o1']);
    const { back } = await dropConnection(watcher);
    await back;
    await createOrders(wf, 'nobody-serves-this', ['o3']);
    await second.until((state) => state.total === 3, { what: 'the second page counting the new order' });
    // Kept by reference, the spec would subscribe the first page again as the second: the first would not be followed any more.
    await first.until((state) => isDeepStrictEqual(state.ids, ['o3']), { what: 'the first page showing the new order', timeoutMs: 5000 });
  });

  it('falls back to a snapshot when the versions missed are gone from the view’s history', async () => {
    const hub = await startHub({ resumeVersions: 3 });
    const { wf } = await runningWorkflow(hub);
    const away = await monitor(hub);
    const awayMirror = await away.subscribe(wf.id, { view: NEWEST });
    const kinds = kindsOf(awayMirror);
    // Another subscriber keeps the view computed, change by change, while the first is away.
    const staying = await (await monitor(hub)).subscribe(wf.id, { view: NEWEST });
    const { back } = await dropConnection(away);
    for (let i = 0; i < 6; i++) {
      await wf.createWorkOrder({ id: `o${i}`, taskType: 'embed' });
      await staying.until((state) => state.ids[0] === `o${i}`, { what: `order o${i} in the view` });
    }
    await back;
    await expectViewInSync(hub, awayMirror, wf.id, NEWEST);
    expect(kinds).toContain('snapshot');
  });

  it('drops a view subscriber that stopped reading to a resync, and it catches up once it reads again', async () => {
    const hub = await startHub({ patchIntervalMs: 2, maxQueuedPackets: 8, resumeVersions: 5 });
    const { wf } = await runningWorkflow(hub);
    const spec: ViewSpec = { kind: 'orders', limit: 200 };
    const stalled = await monitor(hub);
    const stalledMirror = await stalled.subscribe(wf.id, { view: spec });
    const kinds = kindsOf(stalledMirror);
    const healthy = await (await monitor(hub)).subscribe(wf.id, { view: spec });
    const tcp = (stalled.connection.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
    tcp.pause();
    const bulky = 'x'.repeat(8000);
    for (let round = 0; round < 400 && hub.stats().stalledSubscribers === 0; round++) {
      await Promise.all(Array.from({ length: 5 }, (_, i) => wf.createWorkOrder({ id: `r${round}-${i}`, taskType: 'never', description: bulky })));
      await healthy.until((state) => Object.hasOwn(state.orders, `r${round}-4`), { what: `round ${round} in the healthy mirror` });
    }
    expect(hub.stats().stalledSubscribers).toBe(1);
    // More changes than the view's history keeps, while it is out of the stream.
    for (let i = 0; i < 6; i++) {
      await wf.createWorkOrder({ id: `late${i}`, taskType: 'never' });
      await healthy.until((state) => Object.hasOwn(state.orders, `late${i}`), { what: `late order ${i} in the healthy mirror` });
    }
    tcp.resume();
    await expectViewInSync(hub, stalledMirror, wf.id, spec);
    await expectViewInSync(hub, healthy, wf.id, spec);
    expect(kinds).toContain('snapshot');
  });

  it('resumes a view by patches after a clean restart (versions of the stopped run resume)', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const { wf } = await runningWorkflow(first);
    await createOrders(wf, 'embed', ['a']);
    const watcher = await monitor(first);
    const mirror = await watcher.subscribe(wf.id, { view: SUMMARY });
    const kinds = kindsOf(mirror);
    const back = new Promise<void>((resolve) => watcher.connection.socket.once('connect', () => resolve()));
    await first.close();
    const second = await startHub({ dataDir, port: first.port });
    await back;
    await (await control(second)).workflow(wf.id).updateProgress('load', 30);
    await expectViewInSync(second, mirror, wf.id, SUMMARY);
    expect(kinds).not.toContain('snapshot');
  });

  it('refuses a view of an unknown workflow, of one the token cannot see, of @agents, and a cursor naming no order', async () => {
    const hub = await startHub({
      tokens: [
        { token: TOKENS.admin, role: 'admin' },
        { token: 'scoped-monitor-token', role: 'monitor', workflows: ['visible'] },
      ],
    });
    const client = await control(hub);
    await client.createWorkflow({ id: 'visible', userQuery: 'yes' });
    await client.createWorkflow({ id: 'hidden', userQuery: 'no' });
    const scoped = await monitor(hub, 'scoped-monitor-token');
    const admin = await monitor(hub, TOKENS.admin);
    expect(await codeOf(admin.subscribe('missing', { view: SUMMARY }))).toBe('NOT_FOUND');
    expect(await codeOf(scoped.subscribe('hidden', { view: SUMMARY }))).toBe('FORBIDDEN');
    expect(await codeOf(admin.subscribe('@agents', { view: SUMMARY } as never))).toBe('VALIDATION');
    expect(await codeOf(admin.subscribe('visible', { view: { kind: 'orders', before: 'no-such-order' } }))).toBe('VALIDATION');
    expect(await codeOf(admin.subscribe('visible', { view: { kind: 'orders', limit: 500 } }))).toBe('VALIDATION');
    expect((await scoped.subscribe('visible', { view: SUMMARY })).state).toMatchObject({ id: 'visible' });
  });

  it('answers a view of an archived workflow with its final value, and nothing changes it after', async () => {
    const clock = { now: Date.now() };
    const hub = await startHub({ keepFinishedMs: 60_000, sweepIntervalMs: 10 }, { clock: () => clock.now });
    const { wf, settled } = await runningWorkflow(hub);
    await worker(hub);
    await createOrders(wf, 'embed', ['a', 'b', 'c'], (id) => id === 'b');
    await settled();
    await wf.complete();
    await hub.settle();
    const expected = { summary: viewNow(hub, wf.id, SUMMARY), failed: viewNow(hub, wf.id, FAILED) };
    const version = hub.state.versions.get(wf.id)!;
    clock.now += 60_001;
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow archived');

    const watcher = await monitor(hub);
    const summary = await watcher.subscribe(wf.id, { view: SUMMARY });
    const failed = await watcher.subscribe(wf.id, { view: FAILED });
    expect({ summary: summary.state, failed: failed.state }).toEqual(expected);
    expect([summary.version, failed.version]).toEqual([version, version]);
    expect(failed.doc).toBe(`${wf.id}/orders?state=failed`);
    const again = await watcher.connection.request('subscribe', { doc: wf.id, view: FAILED, version, epoch: (await watcher.connection.request('subscribe', { doc: wf.id, view: FAILED })).epoch });
    expect(again).toMatchObject({ mode: 'patches', from: version, to: version, ops: [] });
  });
  it('answers a view subscribed to while its catalog is built, of a workflow archived meanwhile, with the final value', async () => {
    const clock = { now: Date.now() };
    const hub = await startHub({ keepFinishedMs: 60_000, sweepIntervalMs: 10 }, { clock: () => clock.now });
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'big', userQuery: 'more orders than a catalog is built at once' });
    await wf.start();
    for (let at = 0; at < 1_200; at += 600) await wf.createWorkOrders(Array.from({ length: 600 }, (_, i) => ({ id: `o${at + i}`, taskType: 'nobody' })));
    await wf.cancel();
    await hub.settle();
    const expected = viewNow(hub, wf.id, SUMMARY);
    // The catalog's build is held (it looks again every turn) until the workflow has left memory.
    let hold = true;
    const step = WorkflowCatalog.prototype.buildStep;
    const spy = vi.spyOn(WorkflowCatalog.prototype, 'buildStep').mockImplementation(function (this: WorkflowCatalog, maxOrders: number) {
      return hold ? false : step.call(this, maxOrders);
    });
    onTestFinished(() => spy.mockRestore());
    const subscribing = (await monitor(hub)).subscribe(wf.id, { view: SUMMARY });
    await untilTrue(() => spy.mock.calls.length > 0, 'the catalog being built');
    clock.now += 60_001;
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow archived');
    hold = false;
    expect((await subscribing).state).toEqual(expected);
  });

  it('tells the followers of an archived workflow’s views when it is deleted, and follows the one created anew with its id', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    await old.start();
    const early = await monitor(hub);
    // Followed while live, then archived with its final value (no resync: nothing changed after it).
    const followed = await early.subscribe('nightly', { view: SUMMARY });
    await old.complete();
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'the workflow archived');
    await followed.until((view) => view.status === 'completed', { what: 'the final value' });
    // Subscribed to once archived.
    const late = await monitor(hub);
    expect((await late.subscribe('nightly', { view: FAILED })).state).toMatchObject({ total: 0, ids: [] });
    await client.pruneArchive(0);
    await untilTrue(() => !early.docs.has('nightly/summary') && !late.docs.has('nightly/orders?state=failed'), 'the views of the pruned workflow no longer mirrored');
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    const again = await early.subscribe('nightly', { view: SUMMARY });
    expect(again.state).toMatchObject({ status: 'pending' });
    await fresh.start();
    await again.until((view) => view.status === 'in_progress', { what: 'the new workflow’s change' });
  });

  it('brings a live view to its workflow’s final value when the workflow is archived before the next broadcast', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10, patchIntervalMs: 10_000 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'archived at once' });
    await wf.start();
    const watcher = await monitor(hub);
    const summary = await watcher.subscribe(wf.id, { view: SUMMARY });
    await wf.complete();
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow archived');
    await summary.until((view) => view.status === 'completed', { what: 'the final value of the view' });
    expect(summary.state).toEqual(await watcher.connection.request('subscribe', { doc: wf.id, view: SUMMARY }).then((answer) => (answer.mode === 'snapshot' ? answer.state : undefined)));
  });
});

/**
 * The summary view with its counts by task type × state taken by a walk of every order, not from
 * a catalog: cheap enough to take at every version of a workflow of thousands of orders.
 */
function summaryByWalk(hub: RunningHub, workflowId: string): unknown {
  const workflow = hub.state.workflows.get(workflowId) as unknown as Workflow;
  const counts = new Map<string, Map<WorkOrderState, number>>();
  for (const order of Object.values(workflow.workOrders)) {
    const row = counts.get(order.taskType) ?? new Map<WorkOrderState, number>();
    counts.set(order.taskType, row.set(order.state, (row.get(order.state) ?? 0) + 1));
  }
  const walked = { countsByTaskType: () => counts, dataCount: Object.keys(workflow.data).length } as unknown as WorkflowCatalog;
  return structuredClone(summaryView(workflow, walked));
}

describe('the first view of a big workflow', () => {
  it('subscribed while another client changes the workflow, answers the view as the hub’s state was at the version it names, and keeps it equal after', async () => {
    const hub = await startHub();
    const { wf } = await runningWorkflow(hub);
    // Past the size whose catalog the hub builds at once: it is built a slice per turn, while the writes go on.
    for (let batch = 0; batch < 6; batch++) {
      await createOrders(wf, batch % 2 ? 'parse' : 'embed', Array.from({ length: 1000 }, (_, i) => `b${batch}-${i}`));
    }
    /** The summary at each version the workflow had while it was subscribed, from the hub's state then. */
    const summaries = new Map<number, unknown>();
    const record = () => summaries.set(hub.state.versions.get(wf.id)!, summaryByWalk(hub, wf.id));
    record();
    let writing = true;
    let sent = 0;
    const waiting: Array<{ at: number; resolve: () => void }> = [];
    /** Resolves once `count` more writes are acknowledged. */
    const writes = (count: number) => {
      const { promise, resolve } = deferred();
      waiting.push({ at: sent + count, resolve });
      return promise;
    };
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        // One write at a time, recorded once acknowledged: nothing else changes the workflow meanwhile.
        // Orders of every batch change state, those the build has filed and those it has not yet.
        if (i % 4 === 0) await createOrders(wf, 'parse', [`late-${i}`]);
        else if (i % 4 === 1) await wf.cancelWorkOrder(`b${(i * 7) % 6}-${(i * 13) % 1000}`).catch(() => undefined);
        else if (i % 4 === 2) await wf.createWorkOrders([{ id: `after-${i}`, taskType: 'embed', dependencies: [`b0-${i % 1000}`] }]);
        else await wf.addDataReference({ path: `s3://bucket/${i}.csv` });
        record();
        sent++;
        for (const waiter of waiting) if (waiter.at <= sent) waiter.resolve();
      }
    })();
    await writes(3);
    const specs: ViewSpec[] = [SUMMARY, NEWEST, { kind: 'orders', state: 'cancelled', limit: 20 }, { kind: 'orders', taskType: 'parse', state: 'queued', limit: 7 }, { kind: 'orders', state: 'blocked' }];
    const raw = (await monitor(hub)).connection;
    const watchers = await Promise.all(specs.map(() => monitor(hub)));
    const [answer, ...mirrors] = await Promise.all([raw.request('subscribe', { doc: wf.id, view: SUMMARY }), ...specs.map((view, i) => watchers[i]!.subscribe(wf.id, { view }))]);
    await writes(3);
    writing = false;
    await writer;
    if (answer.mode !== 'snapshot') throw new Error('expected a snapshot');
    expect(summaries.has(answer.version), `a version the workflow had: ${answer.version}`).toBe(true);
    expect(answer.state, `the summary at version ${answer.version}`).toEqual(summaries.get(answer.version));
    for (const [i, mirror] of mirrors.entries()) await expectViewInSync(hub, mirror, wf.id, specs[i]!);
  });
});

describe('views and a rollback', () => {
  it('sends view subscribers back to a snapshot, and never resumes a version that showed changes rolled back', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'rollback' });
    await wf.createWorkOrder({ id: 'kept', taskType: 't' });
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe(wf.id, { view: NEWEST });
    const raw = (await monitor(hub)).connection;

    store.hold();
    const refused = codeOf(wf.createWorkOrder({ id: 'ghost', taskType: 't' }));
    await store.holding.promise;
    // Applied but not on disk: a view computed now shows it, under the version it took.
    const seen = await raw.request('subscribe', { doc: wf.id, view: NEWEST });
    if (seen.mode !== 'snapshot') throw new Error('expected a snapshot');
    expect(seen.state).toMatchObject({ ids: ['ghost', 'kept'] });
    const resynced = new Promise<void>((resolve) => watcher.connection.socket.on('resync', (notice: { doc: string }) => notice.doc === mirror.doc && resolve()));
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');
    await resynced;

    // Another change takes the same version number.
    await wf.createWorkOrder({ id: 'real', taskType: 't' });
    expect(hub.state.versions.get(wf.id)).toBe(seen.version);
    const resumed = await raw.request('subscribe', { doc: wf.id, view: NEWEST, version: seen.version, epoch: seen.epoch });
    expect(resumed).toMatchObject({ mode: 'snapshot', state: { ids: ['real', 'kept'] } });
    await expectViewInSync(hub, mirror, wf.id, NEWEST);
  });
});

describe('whole-document subscriptions and a rollback', () => {
  it('never resumes by patches a version that showed changes rolled back, once another change took its number', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'rollback' });
    const raw = (await monitor(hub)).connection;

    store.hold();
    const refused = codeOf(wf.updateProgress('ghost', 20));
    await store.holding.promise;
    // Applied but not on disk: a subscriber now gets it, under the version it took, then goes away before the rollback.
    const seen = await raw.request('subscribe', { doc: wf.id });
    if (seen.mode !== 'snapshot') throw new Error('expected a snapshot');
    expect(seen.state).toMatchObject({ progress: 20 });
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');

    // Another change takes the same version number; the subscriber comes back holding the old one.
    await wf.updateProgress('real', 33);
    expect(hub.state.versions.get(wf.id)).toBe(seen.version);
    const resumed = await raw.request('subscribe', { doc: wf.id, version: seen.version, epoch: seen.epoch });
    expect(resumed).toMatchObject({ mode: 'snapshot', version: seen.version, state: { progress: 33 } });
  });
});

describe('views under randomised changes', () => {
  it('keeps every view’s mirror equal to the view of the hub’s state, at checkpoints and at the end, through random work and forced disconnects', async () => {
    const hub = await startHub({ resumeVersions: 40, patchIntervalMs: 5 });
    const { wf } = await runningWorkflow(hub);
    await createOrders(wf, 'embed', ['seed-1', 'seed-2']);
    await createOrders(wf, 'parse', ['anchor']);
    const specs: ViewSpec[] = [
      SUMMARY,
      { kind: 'orders', limit: 5 },
      { kind: 'orders', state: 'failed', limit: 3 },
      { kind: 'orders', state: 'queued' },
      { kind: 'orders', state: 'cancelled', limit: 200 },
      { kind: 'orders', taskType: 'parse' },
      { kind: 'orders', taskType: 'rank', state: 'completed', limit: 4 },
      { kind: 'orders', before: 'anchor', limit: 3 },
      { kind: 'orders', taskType: 'manual', before: 'anchor' },
    ];
    // Two monitors, each holding every view, dropped at different times.
    const watchers = [await monitor(hub), await monitor(hub)];
    const mirrors = await Promise.all(watchers.map((watcher) => Promise.all(specs.map((view) => watcher.subscribe(wf.id, { view })))));
    const document = await (await monitor(hub, TOKENS.admin)).subscribe(wf.id);
    await worker(hub, 'worker', 3);

    let seed = 11;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
    const kpi = await wf.addKpi({ name: 'loss', target: 0.1, direction: 'lower' });
    let next = 0;
    /** Every order final, or a manual one (no agent can take it) waiting in the queue. */
    const quiet = async () => {
      const version = (await wf.summary()).version;
      await document.until(
        (state, at) => at >= version && Object.values(state.workOrders).every((o) => ['completed', 'failed', 'cancelled'].includes(o.state) || (o.taskType === 'manual' && o.state === 'queued')),
        { what: 'no work in flight' },
      );
    };
    const expectAllInSync = async () => {
      await quiet();
      for (const held of mirrors) for (const [i, mirror] of held.entries()) await expectViewInSync(hub, mirror, wf.id, specs[i]!);
    };

    for (let round = 0; round < 12; round++) {
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 20; i++) {
        const roll = random();
        if (roll < 0.35) {
          const taskType = pick(['embed', 'parse', 'rank', 'manual']);
          const ids = Array.from({ length: 1 + Math.floor(random() * 4) }, () => `o${next++}`);
          const specs = ids.map((id) => ({ id, taskType, input: { fail: random() < 0.25 }, requirements: taskType === 'manual' ? ['human'] : [] }));
          writes.push(wf.createWorkOrders(specs));
        } else if (roll < 0.5 && next > 0) {
          // Refused when the order is already final, or not created yet: that is part of the game.
          writes.push(wf.cancelWorkOrder(`o${Math.floor(random() * next)}`).catch(() => undefined));
        } else if (roll < 0.65) writes.push(wf.updateProgress(`s${Math.floor(random() * 3)}`, Math.floor(random() * 101)));
        else if (roll < 0.75) writes.push(wf.recordKpi(kpi.id, Math.round(random() * 100) / 100));
        else if (roll < 0.85) writes.push(wf.addStep({ name: `step ${round}.${i}`, start: random() < 0.5 }));
        else if (roll < 0.93) writes.push(wf.addDataReference({ path: `s3://bucket/${round}-${i}.csv` }));
        else writes.push(wf.addObjective({ name: `goal ${round}.${i}` }));
      }
      if (round % 3 === 1) writes.push(dropConnection(watchers[0]!).then(({ back }) => back));
      if (round % 4 === 2) writes.push(dropConnection(watchers[1]!).then(({ back }) => back));
      await Promise.all(writes);
      if (round % 4 === 3) await expectAllInSync();
    }
    await expectAllInSync();
    // The views saw every kind of change: failures, cancellations, orders nobody can take.
    const summary = mirrors[0]![0]!.state as { workOrderCounts: Record<string, number> };
    expect(summary.workOrderCounts).toMatchObject({ failed: expect.any(Number), cancelled: expect.any(Number) });
    expect(Math.min(summary.workOrderCounts.failed!, summary.workOrderCounts.cancelled!, summary.workOrderCounts.queued!, summary.workOrderCounts.completed!)).toBeGreaterThan(0);
  });
});
