import type { Namespace } from 'socket.io';
import { describe, expect, it } from 'vitest';
import type { PatchMessage } from '../shared/schemas/monitor.ts';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { AddObjectiveInput, UpdateObjectiveInput } from '../shared/schemas/objectives.ts';
import { StateWriter } from '../server/state-writer.ts';
import { EncodedJson } from '../server/transport/encoded-json.ts';
import { HISTORY_BYTES, PatchStream } from '../server/transport/patch-stream.ts';
import { ADMIN, SETTINGS } from './helpers/domain.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { Transfers } from '../server/transport/transfers.ts';

/** Just enough of a socket.io namespace: one listener in every room (while `listening`), and a record of broadcasts. */
function fakeNamespace() {
  const sent: PatchMessage[] = [];
  const listener = new Set(['listener']);
  const state = { listening: true };
  const nsp = {
    sockets: new Map(),
    // No socket left a document out of following everything (the rooms `unsubscribe` joins).
    adapter: { rooms: { get: () => (state.listening ? listener : undefined), has: () => false } },
    to: () => {
      // Records what is sent to rooms, whoever is left out (`except`).
      const target = { emit: (_event: string, message: PatchMessage) => sent.push(message), except: () => target };
      return target;
    },
  };
  return { nsp: nsp as unknown as Namespace, sent, state };
}

describe('patch stream (no network)', () => {
  it('sends a burst of changes as one message per flush, with repeated fields compacted', async () => {
    const hub = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const { nsp, sent } = fakeNamespace();
    // An interval that never fires: the test decides when the flush happens.
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const { workflow } = await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    await hub.dispatch({ type: 'workflow.start', input: { workflowId: workflow.id }, actor: ADMIN });
    await Promise.all(Array.from({ length: 500 }, (_, i) => hub.dispatch({ type: 'workflow.progress', input: { workflowId: 'w', stage: 'loading', percentage: (i % 100) + 1 }, actor: ADMIN })));
    stream.flush();
    stream.close();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ doc: 'w', from: 0, to: 502 });
    // Five hundred updates of the same few fields: a handful of ops, not fifteen hundred.
    expect(sent[0]!.ops.length).toBeLessThan(20);
    await hub.close();
  });

  it('holds no changes for a document nobody is in a room for; a later subscriber gets patches from its snapshot on', async () => {
    const hub = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const { nsp, sent, state } = fakeNamespace();
    state.listening = false;
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const socket = { join: () => undefined, leave: () => undefined } as unknown as Parameters<PatchStream['subscribe']>[0];
    const progress = (percentage: number) => hub.dispatch({ type: 'workflow.progress', input: { workflowId: 'w', stage: 's', percentage }, actor: ADMIN });
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    for (let i = 1; i <= 5; i++) await progress(i);
    // Subscribed before any flush: what was committed while nobody listened is in its snapshot, not in a broadcast.
    state.listening = true;
    expect(await stream.subscribe(socket, 'w')).toMatchObject({ mode: 'snapshot', version: 6 });
    for (let i = 6; i <= 7; i++) await progress(i);
    stream.flush();
    expect(sent.map(({ from, to }) => ({ from, to }))).toEqual([{ from: 6, to: 8 }]);
    stream.close();
    await hub.close();
  });

  it('keeps a document’s history for resuming only from the first subscription to it (or to all) on', async () => {
    const hub = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const { nsp } = fakeNamespace();
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const socket = { join: () => undefined, leave: () => undefined, data: {}, rooms: new Set() } as unknown as Parameters<PatchStream['subscribe']>[0];
    const progress = (workflowId: string, percentage: number) => hub.dispatch({ type: 'workflow.progress', input: { workflowId, stage: 's', percentage }, actor: ADMIN });
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    for (let i = 1; i <= 5; i++) await progress('w', i);
    // Nobody followed `w` yet, so nobody can hold one of its versions: none were kept.
    const first = await stream.subscribe(socket, 'w', 2, stream.epoch);
    expect(first).toMatchObject({ mode: 'snapshot', version: 6 });
    for (let i = 6; i <= 8; i++) await progress('w', i);
    expect(await stream.subscribe(socket, 'w', 6, stream.epoch)).toMatchObject({ mode: 'patches', from: 6, to: 9 });

    // After a subscription to every document, one created later keeps its history from its creation.
    stream.subscribeAll(socket, {}, undefined, () => true, undefined);
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'x', userQuery: 'q' }), actor: ADMIN });
    await progress('x', 1);
    expect(await stream.subscribe(socket, 'x', 0, stream.epoch)).toMatchObject({ mode: 'patches', from: 0, to: 2 });
    stream.close();
    await hub.close();
  });

  it('keeps at most HISTORY_BYTES of a document’s changes for resuming, however few versions that is', async () => {
    const hub = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const { nsp } = fakeNamespace();
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const socket = { join: () => undefined, leave: () => undefined } as unknown as Parameters<PatchStream['subscribe']>[0];
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    await hub.dispatch({ type: 'objective.add', input: AddObjectiveInput.parse({ workflowId: 'w', id: 'goal', name: 'g' }), actor: ADMIN });
    expect(await stream.subscribe(socket, 'w')).toMatchObject({ mode: 'snapshot', version: 2 });
    // 400 changes of 10 KB each (a description rewritten): 4 MB of changes, well within 1,000 versions.
    const text = (i: number) => `${i} `.padEnd(10_000, 'x');
    for (let i = 1; i <= 400; i++) {
      await hub.dispatch({ type: 'objective.update', input: UpdateObjectiveInput.parse({ workflowId: 'w', objectiveId: 'goal', description: text(i) }), actor: ADMIN });
    }
    // What the history holds is the cost in question: look at it.
    const history = (stream as unknown as { docs: Map<string, { recent: Array<{ ops: unknown }>; dropped: number }> }).docs.get('w')!;
    const bytes = (entries: Array<{ ops: unknown }>) => entries.reduce((sum, entry) => sum + JSON.stringify(entry.ops).length, 0);
    // The bound is kept by an estimate of each change's JSON, which may be off by a few bytes a change.
    expect(bytes(history.recent.slice(history.dropped))).toBeLessThanOrEqual(HISTORY_BYTES * 1.01);
    expect(bytes(history.recent)).toBeLessThanOrEqual(2 * HISTORY_BYTES + 20_000);
    // Recent versions still resume by patches (compacted to the last description); older ones get the snapshot.
    const recent = await stream.subscribe(socket, 'w', 402 - 100, stream.epoch);
    expect(recent).toMatchObject({ mode: 'patches', from: 302, to: 402 });
    expect(recent.mode === 'patches' && recent.ops.filter((op) => op.path === '/objectives/goal/description')).toEqual([{ op: 'replace', path: '/objectives/goal/description', value: text(400) }]);
    expect(await stream.subscribe(socket, 'w', 402 - 300, stream.epoch)).toMatchObject({ mode: 'snapshot', version: 402 });
    stream.close();
    await hub.close();
  });

  it('serialises a snapshot once for everyone subscribing at its version, and never hands out one of a version rolled back', async () => {
    const store = new MemoryStore();
    let failing = false;
    const append = store.append.bind(store);
    store.append = (records) => (failing ? Promise.reject(new Error('ENOSPC')) : append(records));
    const hub = await StateWriter.open({ store, settings: SETTINGS });
    const { nsp } = fakeNamespace();
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const socket = { join: () => undefined, leave: () => undefined } as unknown as Parameters<PatchStream['subscribe']>[0];
    const snapshot = async () => {
      const subscription = await stream.subscribe(socket, 'w');
      if (subscription.mode !== 'snapshot' || !(subscription.state instanceof EncodedJson)) throw new Error('expected a serialised snapshot');
      return { version: subscription.version, state: subscription.state, doc: JSON.parse(subscription.state.json) as { progress: number } };
    };
    const progress = (percentage: number) => hub.dispatch({ type: 'workflow.progress', input: { workflowId: 'w', stage: 's', percentage }, actor: ADMIN });
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }), actor: ADMIN });
    await progress(10);
    const [a, b] = [await snapshot(), await snapshot()];
    expect(b.state).toBe(a.state);
    expect(a.doc).toEqual(JSON.parse(JSON.stringify(hub.state.workflows.get('w'))));

    // A change applied but refused by the disk: a snapshot taken meanwhile shows it, at a version given again after the rollback.
    failing = true;
    const refused = progress(50);
    expect(await snapshot()).toMatchObject({ version: a.version + 1, doc: { progress: 50 } });
    await expect(refused).rejects.toThrow(/could not be stored/);
    failing = false;
    await progress(60);
    expect(await snapshot()).toMatchObject({ version: a.version + 1, doc: { progress: 60 } });
    stream.close();
    await hub.close();
  });

  it('forgets a document that left memory for the archive, once its last changes are broadcast', async () => {
    const hub = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const { nsp, sent } = fakeNamespace();
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const streams = (stream as unknown as { docs: Map<string, unknown> }).docs;
    const create = (id: string) => hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id, userQuery: 'q' }), actor: ADMIN });
    const evict = (workflowId: string, version: number) => hub.dispatch({ type: 'hub.evict', input: { workflowId, version }, actor: ADMIN });
    await create('a');
    await create('b');
    await hub.dispatch({ type: 'workflow.cancel', input: { workflowId: 'a' }, actor: ADMIN });
    stream.flush();
    expect(await evict('a', 2)).toEqual({ evicted: true });
    expect([...streams.keys()]).toEqual(['b']);
    // Not ended, or at another version than the archived one: it stays.
    expect(await evict('b', 1)).toEqual({ evicted: false });
    await hub.dispatch({ type: 'workflow.cancel', input: { workflowId: 'b' }, actor: ADMIN });
    expect(await evict('b', 1)).toEqual({ evicted: false });
    // Evicted with its cancellation not broadcast yet: that goes out first, then the stream is forgotten.
    expect(await evict('b', 2)).toEqual({ evicted: true });
    expect(sent.at(-1)).toMatchObject({ doc: 'b', from: 1, to: 2 });
    expect(streams.size).toBe(0);
    stream.close();
    await hub.close();
  });

  it('forgets a document leaving memory: its pending changes go out first, then its stream, history and kept snapshot go; others keep theirs', async () => {
    const hub = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const { nsp, sent } = fakeNamespace();
    const stream = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const socket = { join: () => undefined, leave: () => undefined } as unknown as Parameters<PatchStream['subscribe']>[0];
    const progress = (workflowId: string, percentage: number) => hub.dispatch({ type: 'workflow.progress', input: { workflowId, stage: 's', percentage }, actor: ADMIN });
    for (const id of ['gone', 'kept']) {
      await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id, userQuery: 'q' }), actor: ADMIN });
      // A snapshot, kept for others subscribing at its version, and history from here on.
      expect(await stream.subscribe(socket, id)).toMatchObject({ mode: 'snapshot', version: 1 });
      for (let i = 1; i <= 3; i++) await progress(id, i);
    }
    // What is kept per document is the cost in question: look at it.
    const held = stream as unknown as { docs: Map<string, unknown>; snapshots: Map<string, unknown> };
    expect([[...held.docs.keys()], [...held.snapshots.keys()]]).toEqual([
      ['gone', 'kept'],
      ['gone', 'kept'],
    ]);

    stream.forget('gone');
    // Its changes, cut where the subscriber's snapshot starts; those of `kept` wait for the flush.
    expect(sent.map(({ doc, from, to }) => ({ doc, from, to }))).toEqual([
      { doc: 'gone', from: 0, to: 1 },
      { doc: 'gone', from: 1, to: 4 },
    ]);
    expect([[...held.docs.keys()], [...held.snapshots.keys()]]).toEqual([['kept'], ['kept']]);
    expect(await stream.subscribe(socket, 'kept', 2, stream.epoch)).toMatchObject({ mode: 'patches', from: 2, to: 4 });
    stream.close();
    await hub.close();
  });
});
