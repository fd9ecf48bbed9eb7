import type { Namespace, Socket } from 'socket.io';
import { describe, expect, it, onTestFinished } from 'vitest';
import { applyPatch } from '../shared/patch.ts';
import type { PatchMessage } from '../shared/schemas/monitor.ts';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { AddObjectiveInput, UpdateObjectiveInput } from '../shared/schemas/objectives.ts';
import { AddKpiInput } from '../shared/schemas/kpis.ts';
import { AddStepInput } from '../shared/schemas/steps.ts';
import { seeded } from './helpers/random-work.ts';
import { CreateWorkOrdersInput } from '../shared/schemas/work-order.ts';
import { ViewSpec } from '../shared/schemas/views.ts';
import { StateWriter } from '../server/state-writer.ts';
import type { EncodedJson } from '../server/transport/encoded-json.ts';
import { PatchStream } from '../server/transport/patch-stream.ts';
import { ViewStreams } from '../server/transport/view-streams.ts';
import { ADMIN, SETTINGS } from './helpers/domain.ts';
import { MemoryStore } from './helpers/memory-store.ts';
import { HeldWrites } from './helpers/held-writes.ts';
import type { Store } from '../server/store/store.ts';
import { untilTrue } from './helpers/wait.ts';
import { Transfers } from '../server/transport/transfers.ts';
import { WorkflowCatalog } from '../server/domain/work/workflow-catalog.ts';
import { viewOf } from '../server/domain/workflows/views.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { codeOf } from './helpers/errors.ts';

/** Just enough of a socket.io namespace: rooms that fake sockets join and leave, and a record of what is sent. */
function fakeNamespace() {
  const rooms = new Map<string, Set<string>>();
  /** Each fake socket's own set of rooms, by id. */
  const joined = new Map<string, Set<string>>();
  const sent: Array<{ event: string; payload: { doc: string } }> = [];
  const nsp = {
    sockets: new Map(),
    adapter: { rooms },
    to: () => {
      // Records what is sent to rooms, whoever is left out (`except`).
      const target = { emit: (event: string, payload: { doc: string }) => sent.push({ event, payload }), except: () => target };
      return target;
    },
    in: (name: string) => ({
      socketsLeave: (left: string) => {
        for (const id of rooms.get(name) ?? []) joined.get(id)?.delete(left);
        rooms.get(name)?.clear();
      },
    }),
  };
  const socket = (id: string) => {
    // The rooms this socket is in, as socket.io's Socket keeps them.
    const own = new Set<string>([id]);
    joined.set(id, own);
    return {
      rooms: own,
      join: (names: string | string[]) => {
        for (const name of [names].flat()) {
          if (!rooms.has(name)) rooms.set(name, new Set());
          rooms.get(name)!.add(id);
          own.add(name);
        }
      },
      leave: (name: string) => {
        own.delete(name);
        rooms.get(name)?.delete(id);
      },
    } as unknown as Socket;
  };
  return { nsp: nsp as unknown as Namespace, sent, socket };
}

/** A writer with a workflow `wf` holding two orders, its patch stream (flushed by hand) and its views. */
async function setup(idleMs = 1e9, store: Store = new MemoryStore()) {
  const hub = await StateWriter.open({ store, settings: SETTINGS });
  const { nsp, sent, socket } = fakeNamespace();
  const patches = new PatchStream(nsp, hub, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
  const views = new ViewStreams(nsp, hub, patches, { idleMs });
  onTestFinished(async () => {
    views.close();
    patches.close();
    await hub.close();
  });
  await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' }), actor: ADMIN });
  const create = (...ids: string[]) =>
    hub.dispatch({ type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId: 'wf', orders: ids.map((id) => ({ id, taskType: 't' })) }), actor: ADMIN });
  await create('a', 'b');
  return { hub, patches, views, sent, socket, create };
}

/** Fills workflow `wf` past the size whose catalog the hub builds at once: it is built a slice per turn. */
async function fillBig(hub: StateWriter): Promise<void> {
  for (let batch = 0; batch < 3; batch++) {
    const orders = Array.from({ length: 1000 }, (_, i) => ({ id: `big${batch}-${i}`, taskType: i % 3 ? 'parse' : 'embed' }));
    await hub.dispatch({ type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId: 'wf', orders }), actor: ADMIN });
  }
}

/** The view as computed now from the writer's state, with a catalog built afresh from the document. */
function viewNow(hub: StateWriter, spec: ViewSpec): unknown {
  const workflow = hub.state.workflows.get('wf') as Workflow;
  return structuredClone(viewOf(workflow, WorkflowCatalog.of(workflow), spec));
}

/** The version and value of a snapshot answer. */
function snapshotOf(answer: Awaited<ReturnType<ViewStreams['subscribe']>>): { version: number; value: unknown } {
  if (answer.mode !== 'snapshot') throw new Error('expected a snapshot');
  return { version: answer.version, value: JSON.parse((answer.state as EncodedJson).json) };
}

describe('view streams (no network)', () => {
  it('sends a followed view’s change as one patch from its previous version, computed at the flush', async () => {
    const { patches, views, sent, socket, create } = await setup();
    const answer = await views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'orders', limit: 2 }));
    expect(answer).toMatchObject({ doc: 'wf/orders?limit=2', mode: 'snapshot', version: 2 });
    await create('c');
    await create('d');
    patches.flush();
    const messages = sent.filter((s) => s.event === 'patch').map((s) => s.payload as PatchMessage);
    expect(messages.map(({ doc, from, to }) => ({ doc, from, to }))).toEqual([{ doc: 'wf/orders?limit=2', from: 2, to: 4 }]);
    if (answer.mode !== 'snapshot') throw new Error('expected a snapshot');
    // The new page: its total and ids replaced, the two orders that left it removed, the two new ones added.
    expect(messages[0]!.ops.map(({ op, path }) => `${op} ${path}`).sort()).toEqual(['add /orders/c', 'add /orders/d', 'remove /orders/a', 'remove /orders/b', 'replace /ids', 'replace /total']);
    expect(applyPatch(JSON.parse((answer.state as EncodedJson).json), messages[0]!.ops)).toEqual(views.valueOf('wf/orders?limit=2'));
  });

  it('leaves a view nobody follows uncomputed, and brings it up to date in one patch for a subscriber that comes back', async () => {
    const { patches, views, sent, socket, create } = await setup();
    const first = await views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'summary' }));
    if (first.mode !== 'snapshot') throw new Error('expected a snapshot');
    patches.unsubscribe(socket('s1'), 'wf/summary');
    for (const id of ['c', 'd', 'e']) await create(id);
    patches.flush();
    expect(sent).toEqual([]);
    const again = await views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'summary' }), first.version, first.epoch);
    expect(again).toMatchObject({ mode: 'patches', from: 2, to: 5 });
  });

  it('drops a view nobody has followed for idleMs, and keeps one that is followed', async () => {
    const { views, patches, socket } = await setup(20);
    const watcher = socket('s1');
    views.subscribe(watcher, 'wf', ViewSpec.parse({ kind: 'summary' }));
    views.subscribe(watcher, 'wf', ViewSpec.parse({ kind: 'orders' }));
    expect(views.size).toBe(2);
    patches.unsubscribe(watcher, 'wf/orders');
    await untilTrue(() => views.size === 1, 'the unfollowed view dropped');
    expect(views.valueOf('wf/summary')).toMatchObject({ id: 'wf' });
    expect(views.valueOf('wf/orders')).toBeUndefined();
    patches.unsubscribe(watcher, 'wf/summary');
    await untilTrue(() => views.size === 0, 'the last view dropped');
  });

  it('ends the views of a workflow that leaves memory for the archive, keeping their subscribers in their rooms to hear of its deletion', async () => {
    const { hub, views, socket } = await setup();
    const subscriber = socket('s1');
    views.subscribe(subscriber, 'wf', ViewSpec.parse({ kind: 'summary' }));
    expect([...subscriber.rooms]).toEqual(['s1', 'doc:wf/summary']);
    await hub.dispatch({ type: 'workflow.cancel', input: { workflowId: 'wf' }, actor: ADMIN });
    const version = hub.state.versions.get('wf')!;
    expect(await hub.dispatch({ type: 'hub.evict', input: { workflowId: 'wf', version }, actor: ADMIN })).toEqual({ evicted: true });
    expect(views.size).toBe(0);
    expect([...subscriber.rooms]).toEqual(['s1', 'doc:wf/summary']);
  });

  it('sends every follower of a view back to a snapshot when the node loads its replica again, also of a workflow archived meanwhile', async () => {
    const { hub, views, sent, socket } = await setup();
    views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'summary' }));
    await hub.dispatch({ type: 'workflow.cancel', input: { workflowId: 'wf' }, actor: ADMIN });
    await hub.dispatch({ type: 'hub.evict', input: { workflowId: 'wf', version: hub.state.versions.get('wf')! }, actor: ADMIN });
    expect(views.size).toBe(0);
    // The replica loaded again may hold the workflow in memory once more (its eviction among the records
    // a truncation deleted): its follower must subscribe again, or it would never see a change of it.
    views.onRollback(new Set(), 'this node loaded its replica again');
    expect(sent).toContainEqual({ event: 'resync', payload: { doc: 'wf/summary', reason: 'this node loaded its replica again' } });
  });

  it('ends the views of a workflow whose creation is rolled back: their subscribers are told to resync and leave their rooms', async () => {
    const store = new HeldWrites(new MemoryStore());
    const { hub, views, sent, socket } = await setup(1e9, store);
    store.hold();
    const created = hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'undone', userQuery: 'q' }), actor: ADMIN });
    const subscriber = socket('s1');
    // In memory, not yet stored: it may be followed already.
    await views.subscribe(subscriber, 'undone', ViewSpec.parse({ kind: 'summary' }));
    await store.holding.promise;
    store.fail();
    expect(await codeOf(created)).toBe('UNAVAILABLE');
    expect(views.size).toBe(0);
    expect([...subscriber.rooms]).toEqual(['s1']);
    expect(sent).toContainEqual({ event: 'resync', payload: { doc: 'undone/summary', reason: 'the hub rolled back changes that could not be stored' } });
  });

  it('answers the first view of a big workflow once its catalog is built, with the view at the version it names, a rebuild of the index meanwhile included', async () => {
    const { hub, views, socket, create } = await setup();
    await fillBig(hub);
    const spec = ViewSpec.parse({ kind: 'orders', taskType: 'embed', limit: 5 });
    const answer = views.subscribe(socket('s1'), 'wf', spec);
    expect(answer).toBeInstanceOf(Promise);
    // As after an unexpected error: the index rebuilt, the catalog being built dropped with it.
    hub.state.work.rebuild(hub.state.workflows.values(), hub.state.agents, Date.now());
    const before = { version: hub.state.versions.get('wf')!, view: viewNow(hub, spec) };
    await create('c');
    const after = { version: hub.state.versions.get('wf')!, view: viewNow(hub, spec) };
    const answered = snapshotOf(await answer);
    // Computed before or after the change, whichever its version says.
    expect([before.version, after.version]).toContain(answered.version);
    expect(answered.value).toEqual(answered.version === before.version ? before.view : after.view);
  });

  it('leaves a followed view whose catalog was dropped for a flush after the catalog is built again, then sends its change as one patch', async () => {
    const { hub, patches, views, sent, socket, create } = await setup();
    await fillBig(hub);
    const spec = ViewSpec.parse({ kind: 'summary' });
    const first = snapshotOf(await views.subscribe(socket('s1'), 'wf', spec));
    hub.state.work.rebuild(hub.state.workflows.values(), hub.state.agents, Date.now());
    await create('c');
    patches.flush();
    const patchesOfView = () => sent.filter((s) => s.event === 'patch' && s.payload.doc === 'wf/summary').map((s) => s.payload as PatchMessage);
    // Not computed at that flush: its catalog is being built.
    expect(patchesOfView()).toEqual([]);
    await untilTrue(() => {
      patches.flush();
      return patchesOfView().length > 0;
    }, 'the view patched once its catalog is built');
    expect(patchesOfView().map(({ from, to }) => ({ from, to }))).toEqual([{ from: first.version, to: hub.state.versions.get('wf') }]);
    expect(applyPatch(first.value, patchesOfView()[0]!.ops)).toEqual(viewNow(hub, spec));
  });

  it('refuses a subscriber whose connection closed while the view waited for its catalog, and keeps it out of the view’s room', async () => {
    const { hub, patches, views, socket } = await setup();
    await fillBig(hub);
    const gone = socket('gone');
    const answer = views.subscribe(gone, 'wf', ViewSpec.parse({ kind: 'summary' }));
    Object.assign(gone, { disconnected: true });
    expect(await codeOf(Promise.resolve(answer))).toBe('UNAVAILABLE');
    expect(patches.followed('wf/summary')).toBe(false);
  });
});

describe('summary views of a workflow with many stages, objectives and KPIs', () => {
  /** Runs a control command on the writer as the admin. */
  const runner = (hub: StateWriter) => (type: string, input: unknown) => hub.dispatch({ type, input, actor: ADMIN } as never);

  it('copies and compares at each flush only the items that changed, not every objective', async () => {
    const { hub, patches, views, socket } = await setup();
    const run = runner(hub);
    await run('workflow.start', { workflowId: 'wf' });
    for (let i = 0; i < 1000; i++) await run('objective.add', AddObjectiveInput.parse({ workflowId: 'wf', id: `ob${i}`, name: `objective ${i}` }));
    await views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'summary' }));
    const workflow = hub.state.workflows.get('wf') as unknown as Workflow;
    const objectives = workflow.objectives;
    let listings = 0;
    workflow.objectives = new Proxy(objectives, {
      ownKeys(target) {
        listings++;
        return Reflect.ownKeys(target);
      },
    });
    for (let i = 0; i < 10; i++) {
      await run('step.add', AddStepInput.parse({ workflowId: 'wf', name: `step ${i}` }));
      await run('objective.update', UpdateObjectiveInput.parse({ workflowId: 'wf', objectiveId: 'ob3', progress: i + 1 }));
      patches.flush();
    }
    expect(listings).toBe(0);
    workflow.objectives = objectives;
    expect(views.valueOf('wf/summary')).toEqual(viewNow(hub, { kind: 'summary' }));
  });

  it('sends patches that keep a follower’s copy equal to the view, flushed while changes are stored or still on their way', async () => {
    const store = new HeldWrites(new MemoryStore());
    const { hub, patches, views, sent, socket } = await setup(1e9, store);
    const run = runner(hub);
    await run('workflow.start', { workflowId: 'wf' });
    const answer = snapshotOf(await views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'summary' })));
    const random = seeded(5);
    const pick = (n: number) => Math.floor(random() * n);
    let mirror = answer.value;
    let version = answer.version;
    for (let step = 0; step < 300; step++) {
      const held = random() < 0.3;
      if (held) store.hold();
      const choice = random();
      const applied =
        choice < 0.2 ? run('objective.add', AddObjectiveInput.parse({ workflowId: 'wf', id: `ob${step}`, name: `o${step}` }))
        : choice < 0.4 ? run('objective.update', UpdateObjectiveInput.parse({ workflowId: 'wf', objectiveId: `ob${pick(step)}`, progress: pick(100) })).catch(() => undefined)
        : choice < 0.55 ? run('kpi.add', AddKpiInput.parse({ workflowId: 'wf', id: `k${step}`, name: 'k', target: 50 }))
        : choice < 0.7 ? run('kpi.record', { workflowId: 'wf', kpiId: `k${pick(step)}`, value: pick(100) }).catch(() => undefined)
        : choice < 0.85 ? run('workflow.progress', { workflowId: 'wf', stage: `s${pick(20)}`, percentage: pick(101) })
        : run('step.add', AddStepInput.parse({ workflowId: 'wf', name: `st${step}` }));
      if (held) {
        // A refusal writes nothing to hold.
        await Promise.race([store.holding.promise, applied]);
        patches.flush();
        store.release();
      }
      await applied;
      if (random() < 0.5) {
        patches.flush();
        expect(views.valueOf('wf/summary')).toEqual(viewNow(hub, { kind: 'summary' }));
      }
      for (const { payload } of sent.splice(0).filter((s) => s.event === 'patch')) {
        const message = payload as PatchMessage;
        expect(message.from).toBe(version);
        mirror = applyPatch(mirror, message.ops);
        version = message.to;
      }
      expect(mirror).toEqual(views.valueOf('wf/summary'));
    }
    patches.flush();
    for (const { payload } of sent.splice(0).filter((s) => s.event === 'patch')) mirror = applyPatch(mirror, (payload as PatchMessage).ops);
    expect(mirror).toEqual(viewNow(hub, { kind: 'summary' }));
  });

  it('follows the leader’s changes on a follower, whose records come committed', async () => {
    const leader = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    const follower = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS, follower: true });
    const { nsp, sent, socket } = fakeNamespace();
    const patches = new PatchStream(nsp, follower, { intervalMs: 1e9, resumeVersions: 1000, maxQueuedPackets: 10 }, new Transfers());
    const views = new ViewStreams(nsp, follower, patches, { idleMs: 1e9 });
    onTestFinished(async () => {
      views.close();
      patches.close();
      await follower.close();
      await leader.close();
    });
    leader.onCommit((batch) => follower.applyCommitted(batch.records));
    const run = runner(leader);
    await run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' }));
    await run('workflow.start', { workflowId: 'wf' });
    await run('objective.add', AddObjectiveInput.parse({ workflowId: 'wf', id: 'ob', name: 'o' }));
    const answer = snapshotOf(await views.subscribe(socket('s1'), 'wf', ViewSpec.parse({ kind: 'summary' })));
    await run('objective.update', UpdateObjectiveInput.parse({ workflowId: 'wf', objectiveId: 'ob', progress: 40 }));
    await run('workflow.progress', { workflowId: 'wf', stage: 'load', percentage: 30 });
    patches.flush();
    const [message] = sent.filter((s) => s.event === 'patch').map((s) => s.payload as PatchMessage);
    expect(applyPatch(answer.value, message!.ops)).toEqual(viewNow(follower, { kind: 'summary' }));
    expect(views.valueOf('wf/summary')).toMatchObject({ objectives: { ob: { progress: 40 } }, stages: { load: { progress: 30 } } });
  });
});
