import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HubError } from '../shared/errors.ts';
import type { OrdersView, SummaryView } from '../shared/schemas/views.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import type { Mirror } from '../client-sdk/index.ts';
import { codeOf } from './helpers/errors.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { control, GRANTS, monitor, startHub, tempDir } from './helpers/hub.ts';
import { untilTrue } from './helpers/wait.ts';
import { recordRequests } from './helpers/requests.ts';

/** Drops a monitor's connection under it (as a network cut does) and resolves once it is connected again. */
async function cut(watcher: Awaited<ReturnType<typeof monitor>>): Promise<void> {
  const socket = watcher.connection.socket;
  const back = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.io.engine.close();
  await back;
}

describe('the monitor SDK catching up', () => {
  it('acts on a rollback notice that arrives while a big snapshot is being read: the mirror ends as the hub', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'big' });
    await wf.start();
    const padding = 'x'.repeat(400);
    for (let first = 0; first < 3000; first += 1000) {
      await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody', description: padding })));
    }
    const watcher = await monitor(hub);
    const socket = watcher.connection.socket;
    // The snapshot is over 1 MB, so it comes as a transfer: at its first read, the held write fails and its resync notice arrives.
    const request = watcher.connection.request.bind(watcher.connection);
    let failed = false;
    (watcher.connection as unknown as { request: (event: string, ...rest: unknown[]) => Promise<unknown> }).request = async (event: string, ...rest: unknown[]) => {
      if (event === 'transfer.read' && !failed) {
        failed = true;
        const notice = new Promise<void>((resolve) => socket.once('resync', () => resolve()));
        store.fail();
        await notice;
      }
      return (request as (event: string, ...rest: unknown[]) => Promise<unknown>)(event, ...rest);
    };
    store.hold();
    const refused = codeOf(wf.updateProgress('s', 20));
    await store.holding.promise;
    const mirror = await watcher.subscribe<Workflow>(wf.id);
    expect(failed).toBe(true);
    expect(await refused).toBe('UNAVAILABLE');
    // The next change takes the rolled-back version's number. Each goes out in a patch of its own:
    // a second monitor's mirror shows when one was broadcast.
    const observer = await (await monitor(hub)).subscribe<Workflow>(wf.id);
    for (const [stage, percentage] of [['s', 33], ['t', 44]] as const) {
      await wf.updateProgress(stage, percentage);
      const now = hub.state.versions.get(wf.id)!;
      await observer.until((_, v) => v === now, { what: `the patch to version ${now} broadcast` });
    }
    const version = hub.state.versions.get(wf.id)!;
    const state = await mirror.until((_, v) => v === version, { what: 'the mirror at the hub’s version' });
    expect(state).toEqual(JSON.parse(JSON.stringify(hub.state.workflows.get(wf.id))));
  }, 60_000);

  it('resumes each mirror with the epoch its version came with: one caught up in a new epoch lends it to no other', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const first = await client.createWorkflow({ id: 'first', userQuery: 'caught up' });
    const shown = await client.createWorkflow({ id: 'shown', userQuery: 'showed a change rolled back' });
    const watcher = await monitor(hub);
    await watcher.subscribe<Workflow>(first.id);
    const mirror = await watcher.subscribe<Workflow>(shown.id);
    store.hold();
    const refused = codeOf(shown.updateProgress('ghost', 20));
    await store.holding.promise;
    // Applied but not on disk: subscribing again shows it, under the version it took.
    await watcher.subscribe<Workflow>(shown.id);
    expect(mirror.state!.stages.ghost?.progress).toBe(20);
    // Away while the hub rolls it back (a new epoch) and another change takes its version's number: no resync notice reaches it.
    const socket = watcher.connection.socket;
    socket.disconnect();
    store.fail();
    expect(await refused).toBe('UNAVAILABLE');
    await shown.updateProgress('real', 33);
    expect(hub.state.versions.get(shown.id)).toBe(mirror.version);
    // Back: the first mirror is caught up in the new epoch, then the connection drops while the second is asked for.
    const request = watcher.connection.request.bind(watcher.connection);
    let dropped = false;
    (watcher.connection as unknown as { request: (event: string, payload: { doc?: string }) => Promise<unknown> }).request = (event, payload) => {
      const answer = (request as (event: string, payload: unknown) => Promise<unknown>)(event, payload);
      if (event === 'subscribe' && payload.doc === shown.id && !dropped) {
        dropped = true;
        socket.io.engine.close();
      }
      return answer;
    };
    const twice = new Promise<void>((resolve) => socket.on('connect', () => dropped && resolve()));
    socket.connect();
    await twice;
    // A change after the catch-up: the mirror must show it on the hub's state, not on the one rolled back.
    await shown.updateProgress('after', 50);
    const state = await mirror.until((w) => w.stages.after !== undefined, { what: 'the change after the catch-up' });
    expect(dropped).toBe(true);
    expect(state).toEqual(JSON.parse(JSON.stringify(hub.state.workflows.get(shown.id))));
  });

  it('with subscribeAll, resumes a workflow that arrived by patch from the version it holds after a reconnect, not from a snapshot', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // subscribeAll's answer names the epoch only in the documents it holds.
    await client.createWorkflow({ id: 'early', userQuery: 'there before' });
    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    const fresh = await client.createWorkflow({ id: 'fresh', userQuery: 'arrives by patch' });
    await untilTrue(() => mirrors.get(fresh.id)?.version === hub.state.versions.get(fresh.id), 'the new workflow mirrored');
    const snapshots: string[] = [];
    watcher.on('change', (change) => change.snapshot && snapshots.push(change.doc));
    await cut(watcher);
    await fresh.updateProgress('s', 10);
    await mirrors.get(fresh.id)!.until((w) => (w as Workflow).stages.s?.progress === 10, { what: 'the change after the reconnect' });
    expect(snapshots).toEqual([]);
  });

  it('with subscribeAll, gets the final state of a workflow archived while the connection was down', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'archived while away' });
    await wf.start();
    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    await mirrors.get(wf.id)!.until((w) => (w as Workflow).status === 'in_progress');
    const socket = watcher.connection.socket;
    socket.disconnect();
    await wf.complete();
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow archived');
    const back = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.connect();
    await back;
    await mirrors.get(wf.id)!.until((w) => (w as Workflow).status === 'completed', { what: 'the archived workflow’s final state' });
  });

  it('resumes the other documents when one it followed was deleted meanwhile, and stops mirroring that one', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const gone = await client.createWorkflow({ id: 'gone', userQuery: 'pruned' });
    const live = await client.createWorkflow({ id: 'live', userQuery: 'still here' });
    const watcher = await monitor(hub);
    await watcher.subscribe<Workflow>(gone.id);
    const mirror = await watcher.subscribe<Workflow>(live.id);
    await gone.cancel('done');
    await untilTrue(() => !hub.state.workflows.has(gone.id), 'the workflow archived');
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual([gone.id]);
    await cut(watcher);
    await live.updateProgress('s', 10);
    await mirror.until((w) => w.stages.s?.progress === 10, { what: 'the change to the live workflow' });
    await untilTrue(() => !watcher.docs.has(gone.id), 'the pruned workflow no longer mirrored');
  });

  it('stops mirroring a workflow it subscribed to once archived when it is pruned, and mirrors one created anew with its id', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    await old.cancel('done');
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'the workflow archived');
    const watcher = await monitor(hub);
    const stale = await watcher.subscribe<Workflow>('nightly');
    expect(stale.state?.userQuery).toBe('yesterday');
    // Subscribed after the archiving: the deletion must still reach it, or it would mirror yesterday's workflow for good.
    await client.pruneArchive(0);
    await untilTrue(() => !watcher.docs.has('nightly'), 'the pruned workflow no longer mirrored');
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    const mirror = await watcher.subscribe<Workflow>(fresh.id);
    await fresh.updateProgress('load', 10);
    await mirror.until((w) => w.stages.load?.progress === 10, { what: 'the new workflow’s change' });
    expect(mirror.state?.userQuery).toBe('today');
  });

  it('with subscribeAll, mirrors a workflow created anew with the id of one pruned from the archive as the new one', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    await old.start();
    await old.updateProgress('load', 50);
    await old.complete();
    await mirrors.get('nightly')!.until((w) => (w as Workflow).status === 'completed', { what: 'the old workflow completed' });
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'the workflow archived');
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual(['nightly']);
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    await fresh.start();
    await fresh.updateProgress('load', 10);
    await hub.settle();
    const hubCopy = { version: hub.state.versions.get('nightly'), state: JSON.stringify(hub.state.workflows.get('nightly')) };
    const mirrored = () => {
      const mirror = watcher.docs.get('nightly');
      return mirror && { version: mirror.version, state: JSON.stringify(mirror.state) };
    };
    // Unless told, the old mirror would ignore the new workflow's patches (versions at or below its own) and keep yesterday's state.
    await new Promise<void>((resolve) => {
      const check = () => mirrored()?.version === hubCopy.version && resolve();
      watcher.on('change', check);
      check();
    });
    expect(mirrored()).toEqual(hubCopy);
  });

  it('with subscribeAll, asks nothing for pruned workflows it never held, drops the one it held, and mirrors one made anew with a pruned id', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const old = ['old-0', 'old-1', 'old-2', 'old-3', 'old-4'];
    for (const id of old) await (await client.createWorkflow({ id, userQuery: 'archived before the monitor came' })).cancel('done');
    await untilTrue(() => old.every((id) => !hub.state.workflows.has(id)), 'the old workflows archived');
    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    const held = await client.createWorkflow({ id: 'held', userQuery: 'mirrored, then archived' });
    await untilTrue(() => mirrors.has(held.id), 'the new workflow mirrored');
    await held.cancel('done');
    await untilTrue(() => !hub.state.workflows.has(held.id), 'the held workflow archived');
    const sent = recordRequests(watcher.connection);
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId).sort()).toEqual([...old, held.id].sort());
    // Its notice and the others' left the hub together: once the held one is dropped, every notice was handled.
    await untilTrue(() => !watcher.docs.has(held.id), 'the pruned workflow no longer mirrored');
    expect(sent).toEqual(['subscribe']);
    await client.createWorkflow({ id: 'old-0', userQuery: 'made anew' });
    await untilTrue(() => (watcher.docs.get('old-0')?.state as Workflow | undefined)?.userQuery === 'made anew', 'the new workflow mirrored');
  });

  it('with subscribeAll on a token scoped to it, still mirrors a workflow created anew with the id of one pruned from the archive', async () => {
    const hub = await startHub({
      keepFinishedMs: 0,
      sweepIntervalMs: 10,
      tokens: [...GRANTS, { token: 'scoped-monitor-token', role: 'monitor', workflows: ['nightly', 'marker'] }],
    });
    const client = await control(hub);
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    const watcher = await monitor(hub, 'scoped-monitor-token');
    await watcher.subscribeAll();
    await old.cancel('done');
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'the workflow archived');
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual(['nightly']);
    await untilTrue(() => !watcher.docs.has('nightly'), 'the pruned workflow no longer mirrored');
    // Created later within the token's scope, as subscribeAll promises. Patches go out in commit
    // order, so once the marker created after it has arrived, the new workflow would have too.
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    const marked = new Promise<Mirror>((resolve) => watcher.on('doc', (mirror) => mirror.doc === 'marker' && resolve(mirror)));
    await client.createWorkflow({ id: 'marker', userQuery: 'after it' });
    await marked;
    const mirror = watcher.docs.get('nightly');
    expect(mirror?.version).toBe(fresh.version);
    expect((mirror?.state as Workflow | undefined)?.userQuery).toBe('today');
  });

  it('stops mirroring a workflow its token may no longer see once a reload narrows its scope, and keeps the others live', async () => {
    const file = join(tempDir(), 'tokens.json');
    const scoped = (workflows: string[]) => [...GRANTS, { token: 'scoped-monitor-token', role: 'monitor', workflows }];
    writeFileSync(file, JSON.stringify(scoped(['kept', 'dropped', 'followed'])), { mode: 0o600 });
    const hub = await startHub({ tokensFile: file, tokens: undefined });
    const client = await control(hub);
    const kept = await client.createWorkflow({ id: 'kept', userQuery: 'still visible' });
    await client.createWorkflow({ id: 'dropped', userQuery: 'no longer visible' });
    const one = await monitor(hub, 'scoped-monitor-token');
    const mirror = await one.subscribe<Workflow>('kept');
    await one.subscribe('dropped');
    const all = await monitor(hub, 'scoped-monitor-token');
    await all.subscribeAll();
    expect([...all.docs.keys()].sort()).toEqual(['@agents', 'dropped', 'kept']);
    writeFileSync(file, JSON.stringify(scoped(['kept'])));
    await hub.reloadTokens();
    // Each reconnects with the same token, now scoped to `kept` alone: a catch-up answered FORBIDDEN, retried for good, kept the old state.
    await untilTrue(() => !one.docs.has('dropped') && !all.docs.has('dropped'), 'the workflow out of scope no longer mirrored');
    await kept.updateProgress('s', 10);
    await mirror.until((w) => w.stages.s?.progress === 10, { what: 'the change to the workflow still in scope' });
    await all.docs.get('kept')!.until((w) => (w as Workflow).stages.s?.progress === 10, { what: 'the change, following everything' });
  });

  it('resumes a workflow pruned and created anew with the same id while the connection was down from a snapshot, not from the old one’s version', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    await old.updateProgress('load', 50);
    await old.cancel('done');
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<Workflow>('nightly');
    const socket = watcher.connection.socket;
    socket.disconnect();
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'the workflow archived');
    await client.pruneArchive(0);
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    // Followed by another monitor: the hub keeps the new workflow's history for resuming.
    await (await monitor(hub)).subscribe('nightly');
    for (const percentage of [10, 20, 30, 40]) await fresh.updateProgress('load', percentage);
    await hub.settle();
    const back = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.connect();
    await back;
    await mirror.until((_, at) => at >= fresh.version, { what: 'the new workflow’s version' });
    expect(JSON.stringify(mirror.state)).toBe(JSON.stringify(hub.state.workflows.get('nightly')));
  });

  it('stays unsubscribed from a document it unsubscribes from while a reconnect catches it up', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const dropped = await client.createWorkflow({ id: 'dropped', userQuery: 'unsubscribed' });
    const kept = await client.createWorkflow({ id: 'kept', userQuery: 'still followed' });
    const watcher = await monitor(hub);
    await watcher.subscribe(dropped.id);
    const keptMirror = await watcher.subscribe<Workflow>(kept.id);
    // Asked right after the catch-up that follows the reconnect has asked for the document again.
    const unsubscribed = new Promise<void>((resolve) => watcher.connection.socket.once('connect', () => resolve(watcher.unsubscribe(dropped.id))));
    await cut(watcher);
    await unsubscribed;
    // Held while the catch-up runs: once the mirror has it, the catch-up is over.
    await kept.updateProgress('s', 10);
    await keptMirror.until((w) => w.stages.s?.progress === 10, { what: 'the change to the followed workflow' });
    // Not mirrored, so not asked for again at the next reconnect either.
    expect(watcher.docs.has(dropped.id)).toBe(false);
  });

  it('keeps a mirror whose snapshot transfer was gone during a resume (the document is still there), and catches it up', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'big', userQuery: 'big' });
    const padding = 'x'.repeat(400);
    for (let first = 0; first < 3000; first += 1000) {
      await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody', description: padding })));
    }
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<Workflow>(wf.id);
    const request = watcher.connection.request.bind(watcher.connection);
    let gone = 0;
    (watcher.connection as unknown as { request: (event: string, ...rest: unknown[]) => Promise<unknown> }).request = async (event: string, ...rest: unknown[]) => {
      // The first transfer read after the cut answers as a transfer dropped by the hub (memory, or the old socket's) does.
      if (event === 'transfer.read' && gone++ === 0) throw new HubError('NOT_FOUND', 'no such transfer');
      return (request as (event: string, ...rest: unknown[]) => Promise<unknown>)(event, ...rest);
    };
    await wf.updateProgress('s', 10);
    await mirror.until((w) => w.stages.s?.progress === 10);
    // Resumed without an epoch, the hub answers with a snapshot: big, so a transfer.
    mirror.epoch = undefined;
    await cut(watcher);
    await wf.updateProgress('s', 20);
    await mirror.until((w) => w.stages.s?.progress === 20, { what: 'the mirror caught up after its transfer was gone' });
    expect(gone).toBeGreaterThanOrEqual(1);
    expect(watcher.docs.get(wf.id)).toBe(mirror);
  });

  it('takes a fresh snapshot when a patch does not apply to the mirror, leaving its state as it was meanwhile', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'patched' });
    await wf.updateProgress('s', 10);
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<Workflow>(wf.id);
    // The application changed its copy: the next patch's replace of stages/s/progress has nowhere to go.
    delete (mirror.state!.stages as Record<string, unknown>).s;
    const seen: Array<{ snapshot: boolean; stages: string[] }> = [];
    mirror.on('change', (change) => seen.push({ snapshot: change.snapshot, stages: Object.keys(mirror.state!.stages) }));
    await wf.updateProgress('s', 20);
    await mirror.until((w) => w.stages.s?.progress === 20, { what: 'the mirror mended by a snapshot' });
    expect(seen).toEqual([{ snapshot: true, stages: ['s'] }]);
    expect(mirror.version).toBe(hub.state.versions.get(wf.id));
    expect(mirror.state).toEqual(hub.state.workflows.get(wf.id));
  });

  it('catches up every other view after a reconnect when one can no longer be followed, and drops that one', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const nightly = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    await nightly.start();
    await nightly.createWorkOrders([{ id: 'o1', taskType: 'nobody' }, { id: 'o2', taskType: 'nobody' }, { id: 'o3', taskType: 'nobody' }]);
    const other = await client.createWorkflow({ id: 'other', userQuery: 'goes on' });
    await other.start();
    const watcher = await monitor(hub);
    // A page of nightly's orders before o2, then the summary of another workflow.
    const page = await watcher.subscribe('nightly', { view: { kind: 'orders', before: 'o2' } });
    expect((page.state as OrdersView).ids).toEqual(['o1']);
    const summary = await watcher.subscribe('other', { view: { kind: 'summary' } });
    // Away while nightly ends, is archived, pruned and made anew without an o2 (its page is VALIDATION now), and the other moves on.
    const socket = watcher.connection.socket;
    await new Promise<void>((resolve) => socket.once('disconnect', () => resolve()).disconnect());
    await nightly.complete();
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'nightly archived');
    await client.pruneArchive(0);
    await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    await other.updateProgress('load', 40);
    socket.connect();
    await summary.until((view) => (view as SummaryView).progress === 40, { what: 'the summary caught up after the reconnect', timeoutMs: 10_000 });
    expect(watcher.docs.has('nightly/orders?before=o2')).toBe(false);
  });
});

