import { describe, expect, it, vi } from 'vitest';
import { Mirror, type MirrorChange, type MonitorClient, type WorkflowHandle } from '../client-sdk/index.ts';
import type { RunningHub } from '../server/index.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { deferred, untilTrue } from './helpers/wait.ts';

/** The hub's committed state of a document, as plain JSON, and its version. */
function hubDoc(hub: RunningHub, doc: string): { version: number; json: string } {
  // The pool before its first agent is an empty object to monitors.
  const state = doc === '@agents' ? (hub.state.agents ?? {}) : hub.state.workflows.get(doc);
  return { version: hub.state.versions.get(doc) ?? 0, json: JSON.stringify(state) };
}

/** Packets waiting unread in the hub's monitor connections, from its /metrics. */
async function queued(hub: RunningHub): Promise<number> {
  const text = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).text();
  return Number(text.split('\n').find((line) => line.startsWith('switchboard_monitor_queued_packets '))!.split(' ')[1]);
}

/** Waits until everything is on disk and the mirror has caught up, then compares it with the hub. */
async function expectInSync(hub: RunningHub, mirror: Mirror): Promise<void> {
  await hub.settle();
  const { version, json } = hubDoc(hub, mirror.doc);
  await mirror.until((_, at) => at >= version, { what: `version ${version}` });
  expect(mirror.version).toBe(version);
  expect(JSON.stringify(mirror.state)).toBe(json);
}

/** Drops a client's connection as a network failure would; the client reconnects by itself. */
function dropConnection(client: MonitorClient): Promise<void> {
  const back = new Promise<void>((resolve) => client.connection.socket.once('connect', () => resolve()));
  client.connection.socket.io.engine.close();
  return back;
}

/**
 * Subscribes a monitor to a running workflow, cuts its connection, makes `changes` while it is
 * away, and waits for it to come back. Returns how each later change reached the mirror.
 */
async function watchWhileAway(hub: RunningHub, changes: (wf: WorkflowHandle) => Promise<void>) {
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'away' });
  await wf.start();
  const watcher = await monitor(hub);
  const mirror = await watcher.subscribe(wf.id);
  const kinds: string[] = [];
  mirror.on('change', (c) => kinds.push(c.snapshot ? 'snapshot' : 'patches'));
  const gone = deferred();
  watcher.connection.socket.once('disconnect', () => gone.resolve());
  const back = dropConnection(watcher);
  await gone.promise;
  await changes(wf);
  await back;
  return { wf, mirror, kinds };
}

/** Workflows `dropped` and `kept`, and a monitor following everything that unsubscribed from `dropped`. */
async function followingAllButDropped() {
  const hub = await startHub();
  const client = await control(hub);
  const dropped = await client.createWorkflow({ id: 'dropped', userQuery: 'not wanted any more' });
  const kept = await client.createWorkflow({ id: 'kept', userQuery: 'still followed' });
  const watcher = await monitor(hub);
  await watcher.subscribeAll();
  await watcher.unsubscribe('dropped');
  return { dropped, kept, watcher };
}

describe('live monitoring', () => {
  it('stops following a document unsubscribed from while following everything, until it is subscribed to again', async () => {
    const { dropped, kept, watcher } = await followingAllButDropped();
    const appeared: string[] = [];
    watcher.on('doc', (mirror) => appeared.push(mirror.doc));
    // What the hub sends: the document's patches stop too.
    const patched: string[] = [];
    watcher.connection.socket.on('patch', (message: { doc: string }) => patched.push(message.doc));
    // Both change, `kept` last: once its mirror shows it, and one more round trip, `dropped`'s patch would have come.
    await dropped.start();
    await kept.start();
    await watcher.docs.get('kept')!.until((w) => (w as { status: string }).status === 'in_progress');
    await watcher.summary('kept');
    expect({ appeared, dropped: watcher.docs.has('dropped'), patched: patched.includes('dropped') }).toEqual({ appeared: [], dropped: false, patched: false });
    // Subscribed to again, it is followed again.
    const again = await watcher.subscribe('dropped');
    await dropped.complete();
    await again.until((w) => w.status === 'completed');
    expect(watcher.docs.get('dropped')).toBe(again);
  });

  it('still gets no patches of a document unsubscribed from under subscribeAll once its connection dropped and the SDK resumed', async () => {
    const { dropped, kept, watcher } = await followingAllButDropped();
    // What the SDK asks, once answered: its resume is over when it has said its unsubscribe again.
    const answered: string[] = [];
    const request = watcher.connection.request.bind(watcher.connection);
    watcher.connection.request = (async (...args: Parameters<typeof request>) => {
      const reply = await request(...args);
      answered.push(`${args[0]} ${JSON.stringify(args[1])}`);
      return reply;
    }) as typeof request;
    const patched: string[] = [];
    watcher.connection.socket.on('patch', (message: { doc: string }) => patched.push(message.doc));

    // A network blip: socket.io reconnects and the SDK resumes with subscribeAll.
    watcher.connection.socket.io.engine.close();
    await untilTrue(() => answered.includes('unsubscribe {"doc":"dropped"}'), 'the resume over');
    await dropped.start();
    await kept.start();
    await watcher.docs.get('kept')!.until((w) => (w as { status: string }).status === 'in_progress');
    await watcher.summary('kept');
    expect({ mirrored: watcher.docs.has('dropped'), patched: patched.includes('dropped') }).toEqual({ mirrored: false, patched: false });
  });

  it('says no unsubscribe again at a resume for documents unsubscribed from under subscribeAll that left memory since', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const watcher = await monitor(hub);
    await watcher.subscribeAll();
    const live = await client.createWorkflow({ id: 'live', userQuery: 'unsubscribed from, still in memory' });
    await watcher.unsubscribe(live.id);
    // A long-lived dashboard lets go of each workflow it is done with; each then ends and is archived.
    for (let i = 0; i < 5; i++) {
      const wf = await client.createWorkflow({ id: `done-${i}`, userQuery: 'finished' });
      await watcher.unsubscribe(wf.id);
      await wf.cancel();
    }
    await untilTrue(() => [...hub.state.workflows.keys()].join() === 'live', 'the finished workflows archived');
    const requested: string[] = [];
    const request = watcher.connection.request.bind(watcher.connection);
    watcher.connection.request = ((...args: Parameters<typeof request>) => {
      requested.push(`${args[0]} ${JSON.stringify(args[1])}`);
      return request(...args);
    }) as typeof request;
    const resumed = new Promise<void>((resolve) => watcher.connection.socket.once('connect', () => resolve()));
    watcher.connection.socket.io.engine.close();
    await resumed;
    await untilTrue(() => requested.some((line) => line.startsWith('unsubscribe {"doc":"live"}')), 'the resume over');
    // One more round trip: whatever the resume sends is sent by then.
    await watcher.summary(live.id);
    expect(requested.filter((line) => line.startsWith('unsubscribe'))).toEqual(['unsubscribe {"doc":"live"}']);
    await live.start();
    await watcher.summary(live.id);
    expect(watcher.docs.has(live.id)).toBe(false);
  });

  it('mirrors no document unsubscribed from while subscribeAll reads its big snapshot', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // Five orders of 250 KB: over the 1 MB a reply holds inline, its snapshot comes as a transfer.
    const big = await client.createWorkflow({ id: 'big', userQuery: 'read from a transfer' });
    const input = 'x'.repeat(250_000);
    await big.createWorkOrders([0, 1, 2].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
    await big.createWorkOrders([3, 4].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
    const watcher = await monitor(hub);
    const request = watcher.connection.request.bind(watcher.connection);
    let unsubscribed = false;
    watcher.connection.request = (async (...args: Parameters<typeof request>) => {
      if (args[0] === 'transfer.read' && !unsubscribed) {
        unsubscribed = true;
        await watcher.unsubscribe('big'); // the user stops following it while its snapshot is read
      }
      return request(...args);
    }) as typeof request;
    const appeared: string[] = [];
    watcher.on('doc', (mirror) => appeared.push(mirror.doc));
    await watcher.subscribeAll();
    expect(unsubscribed).toBe(true);
    // Loaded all the same, its answer would make a mirror the hub no longer patches (it left the room): a frozen copy.
    expect({ mirrored: watcher.docs.has('big'), appeared: appeared.includes('big') }).toEqual({ mirrored: false, appeared: false });
  });

  it('shows the agent pool before its first agent as an empty object of agents by id, then follows it', async () => {
    const hub = await startHub();
    const pool = await (await monitor(hub)).subscribe('@agents');
    expect({ version: pool.version, state: pool.state }).toEqual({ version: 0, state: {} });
    // So to subscribeAll, beside the workflows.
    await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'one workflow, no agent yet' });
    const all = await (await monitor(hub)).subscribeAll();
    expect([...all].map(([doc, mirror]) => [doc, mirror.version, mirror.state ?? null]).filter(([doc]) => doc === '@agents')).toEqual([['@agents', 0, {}]]);
    expect([...all.keys()].sort()).toEqual(['@agents', 'wf']);
    const worker = await agent(hub, { agentId: 'first', agentType: 'w' });
    await pool.until((state) => state?.['first'] !== undefined);
    await expectInSync(hub, pool);
    await worker.close();
  });

  it('answers a subscription with a snapshot and its version, then streams patches from→to', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'watch me' });
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<{ status: string; progress: number }>(wf.id);
    expect(mirror.version).toBe(wf.version);
    expect(mirror.state!.status).toBe('pending');
    const changes: Array<{ from: number; to: number }> = [];
    mirror.on('change', (c) => changes.push({ from: c.from, to: c.to }));
    await wf.start();
    await wf.updateProgress('loading', 40);
    await expectInSync(hub, mirror);
    expect(mirror.state).toMatchObject({ status: 'in_progress', progress: 40 });
    // Each message continues exactly where the previous one ended.
    for (let i = 1; i < changes.length; i++) expect(changes[i]!.from).toBe(changes[i - 1]!.to);
    expect(changes[0]!.from).toBe(1);
  });

  it('keeps a mirror in step when a change listener throws: the error is reported, the later listeners and patches still run', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a throwing listener' });
    const mirror = await (await monitor(hub)).subscribe<{ status: string; progress: number }>(wf.id);
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      mirror.on('change', () => {
        throw new Error('a bug in the listener');
      });
      const seen: number[] = [];
      mirror.on('change', (change) => seen.push(change.to));
      await wf.start();
      await wf.updateProgress('loading', 40);
      await expectInSync(hub, mirror);
      expect(seen.at(-1)).toBe(mirror.version);
      expect(consoleError.mock.calls.length).toBe(seen.length);
      expect(consoleError.mock.calls[0]!.slice(0, 1)).toEqual(['[switchboard] a "change" listener threw:']);
    } finally {
      consoleError.mockRestore();
    }
  });

  it('rejects until() with what its predicate throws after a change, as when it checks at once', async () => {
    const mirror = new Mirror<{ done: number; total: number }>('wf');
    mirror.load({ doc: 'wf', mode: 'snapshot', version: 1, epoch: 'e', state: { done: 1, total: 0 } });
    const waiting = mirror.until((state) => {
      if (state.done > 1 && state.total === 0) throw new RangeError('no total yet');
      return state.done > 1 && state.done >= state.total;
    }, { timeoutMs: 60_000 });
    mirror.apply({ doc: 'wf', from: 1, to: 2, ops: [{ op: 'replace', path: '/done', value: 2 }] });
    await expect(waiting).rejects.toThrow('no total yet');
  });

  it('waits in until() for as long as told, Infinity too (no timer fires at once), and refuses a negative timeout', async () => {
    const mirror = new Mirror<{ done: number }>('wf');
    mirror.load({ doc: 'wf', mode: 'snapshot', version: 1, epoch: 'e', state: { done: 1 } });
    const waiting = mirror.until((state) => state.done === 2, { timeoutMs: Infinity });
    // Past the 1 ms a setTimeout of Infinity fires after.
    await new Promise((resolve) => setTimeout(resolve, 5));
    mirror.apply({ doc: 'wf', from: 1, to: 2, ops: [{ op: 'replace', path: '/done', value: 2 }] });
    await expect(waiting).resolves.toEqual({ done: 2 });
    await expect(mirror.until(() => false, { timeoutMs: -1 })).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('coalesces a burst of progress updates: fewer messages than changes, and the mirror exact', async () => {
    const hub = await startHub({ patchIntervalMs: 50 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'burst' });
    await wf.start();
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe(wf.id);
    let messages = 0;
    mirror.on('change', () => messages++);
    await Promise.all(Array.from({ length: 500 }, (_, i) => wf.updateProgress('loading', (i % 100) + 1)));
    await expectInSync(hub, mirror);
    expect(mirror.version - 2).toBeGreaterThanOrEqual(500);
    // How many depends on timing (see test/patch-stream.test.ts for the exact count); never one per change.
    expect(messages).toBeLessThan(500);
  });

  it('resumes after a reconnect with only the patches it missed', async () => {
    const hub = await startHub();
    const { wf, mirror, kinds } = await watchWhileAway(hub, async (wf) => {
      for (let i = 1; i <= 20; i++) await wf.updateProgress(`stage-${i % 3}`, i * 5);
    });
    await expectInSync(hub, mirror);
    expect(wf.version).toBe(mirror.version);
    expect(kinds).not.toContain('snapshot');
  });

  it('falls back to a fresh snapshot when the missed patches are gone from the buffer', async () => {
    const hub = await startHub({ resumeVersions: 5 });
    const { mirror, kinds } = await watchWhileAway(hub, async (wf) => {
      for (let i = 1; i <= 30; i++) await wf.updateProgress('loading', i);
    });
    await expectInSync(hub, mirror);
    expect(kinds).toContain('snapshot');
  });

  it('catches up on more than 1 MB of missed changes with the snapshot, as a transfer, not one message of every op', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a big catch-up' });
    const watcher = await monitor(hub);
    const held = await watcher.connection.request('subscribe', { doc: wf.id });
    if (held.mode !== 'snapshot') throw new Error('a first subscription is a snapshot');
    // 1.2 MB of orders, in requests under maxHttpBufferSize.
    for (let batch = 0; batch < 2; batch++) await wf.createWorkOrders(Array.from({ length: 100 }, () => ({ taskType: 'big', input: { blob: 'x'.repeat(6000) } })));
    const answer = await watcher.connection.request('subscribe', { doc: wf.id, version: held.version, epoch: held.epoch });
    if (answer.mode !== 'snapshot' || !answer.transfer) throw new Error(`expected a snapshot as a transfer, got ${JSON.stringify(answer).slice(0, 200)}`);
    expect([answer.version, answer.transfer.bytes > 1_200_000]).toEqual([wf.version, true]);
    // A small catch-up is still the patches missed.
    await wf.start();
    expect(await watcher.connection.request('subscribe', { doc: wf.id, version: answer.version, epoch: answer.epoch })).toMatchObject({ mode: 'patches', from: wf.version - 1, to: wf.version });
  });

  it('still resumes from exactly resumeVersions back after a long stream of changes', async () => {
    const hub = await startHub({ resumeVersions: 5 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'long stream' });
    await wf.start();
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe(wf.id);
    const kinds: string[] = [];
    mirror.on('change', (c) => kinds.push(c.snapshot ? 'snapshot' : 'patches'));
    for (let i = 1; i <= 150; i++) await wf.updateProgress('loading', i % 100);
    await expectInSync(hub, mirror);
    for (const missed of [5, 6]) {
      kinds.length = 0;
      const paused = deferred();
      watcher.connection.socket.once('disconnect', () => paused.resolve());
      const back = dropConnection(watcher);
      await paused.promise;
      for (let i = 1; i <= missed; i++) await wf.updateProgress('loading', i);
      await back;
      await expectInSync(hub, mirror);
      expect(kinds.includes('snapshot')).toBe(missed > 5);
    }
  });

  it('resumes by patches after a clean restart: versions of the stopped run resume, and the unchanged workflow is not sent again', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const client = await control(first);
    const wf = await client.createWorkflow({ userQuery: 'restart' });
    await wf.start();
    const watcher = await monitor(first);
    const mirror = await watcher.subscribe(wf.id);
    const kinds: string[] = [];
    mirror.on('change', (c) => kinds.push(c.snapshot ? 'snapshot' : 'patches'));
    const back = new Promise<void>((resolve) => watcher.connection.socket.once('connect', () => resolve()));
    await first.close();
    const second = await startHub({ dataDir, port: first.port });
    await back;
    const again = await control(second);
    await again.workflow(wf.id).updateProgress('loading', 30);
    await expectInSync(second, mirror);
    expect(kinds).toEqual(['patches']);
  });

  it('keeps the mirror equal to the hub under randomised changes and forced disconnects', async () => {
    const hub = await startHub({ resumeVersions: 40, patchIntervalMs: 5 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'random' });
    await wf.start();
    const worker = await agent(hub, { agentId: 'worker', agentType: 'w', maxConcurrentTasks: 4, progressIntervalMs: 1 });
    await worker.onTask('*', async (_task, ctx) => {
      for (let p = 10; p <= 100; p += 30) await ctx.progress(p, `at ${p}`, { p });
      return { result: 'ok' };
    });
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe(wf.id);
    const all = await monitor(hub, TOKENS.admin);
    const everything = await all.subscribeAll();
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const kpi = await wf.addKpi({ name: 'k', target: 10 });
    const steps: string[] = [];
    for (let round = 0; round < 12; round++) {
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < 25; i++) {
        const pick = random();
        if (pick < 0.3) writes.push(wf.updateProgress(`s${Math.floor(random() * 4)}`, Math.floor(random() * 101)));
        else if (pick < 0.5) writes.push(wf.recordKpi(kpi.id, Math.round(random() * 20)));
        else if (pick < 0.65) writes.push(wf.addStep({ name: `step ${round}.${i}`, start: true }).then((s) => steps.push(s.id)));
        else if (pick < 0.75 && steps.length) writes.push(wf.completeStep(steps.shift()!).catch(() => undefined));
        else if (pick < 0.9) writes.push(wf.createWorkOrder({ taskType: 't', description: `job ${round}.${i}` }));
        else writes.push(wf.addObjective({ name: `goal ${round}.${i}` }));
      }
      if (round % 3 === 1) writes.push(dropConnection(watcher));
      if (round % 4 === 2) writes.push(dropConnection(all));
      await Promise.all(writes);
    }
    // From the version of the last write on: an older mirror would not hold every order yet.
    await mirror.until(({ workOrderCounts: counts }, at) => at >= wf.version && counts.queued + counts.offered + counts.running === 0, { what: 'all work orders finished' });
    await expectInSync(hub, mirror);
    await expectInSync(hub, everything.get(wf.id)!);
    await expectInSync(hub, everything.get('@agents')!);
  });

  it('drops a stalled subscriber to a resync without slowing the others or growing without bound', async () => {
    const hub = await startHub({ patchIntervalMs: 2, maxQueuedPackets: 8 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'stall' });
    await wf.start();
    const stalled = await monitor(hub);
    const stalledMirror = await stalled.subscribe(wf.id);
    const healthy = await monitor(hub);
    const healthyMirror = await healthy.subscribe(wf.id);
    // Stop reading from the socket, as a frozen process would.
    const tcp = (stalled.connection.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
    tcp.pause();
    const bulky = 'x'.repeat(8000);
    for (let round = 0; round < 400 && hub.stats().stalledSubscribers === 0; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => wf.addStep({ name: `bulk ${round}.${i}`, description: bulky })));
      // The healthy subscriber keeps up while the other one is frozen.
      if (round % 20 === 0) await expectInSync(hub, healthyMirror);
    }
    expect(hub.stats().stalledSubscribers).toBe(1);
    await expectInSync(hub, healthyMirror);
    tcp.resume();
    await expectInSync(hub, stalledMirror);
  });

  it('keeps a stalled subscriber out of the stream when it subscribes again before catching up', async () => {
    const hub = await startHub({ patchIntervalMs: 2, maxQueuedPackets: 8 });
    const client = await control(hub);
    const busy = await client.createWorkflow({ userQuery: 'stall' });
    const other = await client.createWorkflow({ userQuery: 'subscribed to while stalled' });
    const stalled = await monitor(hub);
    const busyMirror = await stalled.subscribe(busy.id);
    const tcp = (stalled.connection.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
    tcp.pause();
    const bulky = 'x'.repeat(8000);
    for (let round = 0; round < 400 && hub.stats().stalledSubscribers === 0; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => busy.addStep({ name: `bulk ${round}.${i}`, description: bulky })));
    }
    expect(hub.stats().stalledSubscribers).toBe(1);
    // It still sends (it only stopped reading): the hub puts it in the room of what it asks for.
    const atStall = await queued(hub);
    const otherMirror = stalled.subscribe(other.id);
    otherMirror.catch(() => undefined);
    let most = 0;
    for (let i = 0; i < 60; i++) {
      await other.addStep({ name: `step ${i}`, description: bulky });
      most = Math.max(most, await queued(hub));
    }
    // What waits for it stays bounded (its answer on top): it is taken out of the new room too, not left to pile up until it reads.
    expect(most).toBeLessThanOrEqual(atStall + 2);
    tcp.resume();
    await expectInSync(hub, busyMirror);
    await expectInSync(hub, await otherMirror);
  });

  it('brings a scoped monitor that fell behind the workflows of its scope created after it caught up', async () => {
    const hub = await startHub({
      patchIntervalMs: 2,
      maxQueuedPackets: 8,
      tokens: [
        { token: TOKENS.admin, role: 'admin' },
        { token: 'scoped-monitor-token', role: 'monitor', workflows: ['busy', 'later'] },
      ],
    });
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'busy', userQuery: 'stall' });
    await wf.start();
    const scoped = await monitor(hub, 'scoped-monitor-token');
    const docs = await scoped.subscribeAll();
    const tcp = (scoped.connection.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
    tcp.pause();
    const bulky = 'x'.repeat(8000);
    for (let round = 0; round < 400 && hub.stats().stalledSubscribers === 0; round++) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => wf.addStep({ name: `bulk ${round}.${i}`, description: bulky })));
    }
    expect(hub.stats().stalledSubscribers).toBe(1);
    tcp.resume();
    await expectInSync(hub, docs.get('busy')!);
    // A round trip after the resync notices: the catch-ups they started have been answered.
    await scoped.summary('busy');
    const arrived = new Promise<Mirror>((resolve) => scoped.on('doc', (mirror) => mirror.doc === 'later' && resolve(mirror)));
    await client.createWorkflow({ id: 'later', userQuery: 'after the stall' });
    await expectInSync(hub, await arrived);
  });

  it('sends a workflow created after subscribeAll as a patch from version 0, without a resync', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const watcher = await monitor(hub);
    const docs = await watcher.subscribeAll();
    const arrived = new Promise<MirrorChange>((resolve) => watcher.on('change', (change) => change.doc === 'fresh' && resolve(change)));
    await client.createWorkflow({ id: 'fresh', userQuery: 'new' });
    expect(await arrived).toMatchObject({ doc: 'fresh', from: 0, to: 1, snapshot: false });
    expect(docs.get('fresh')!.state).toMatchObject({ id: 'fresh', status: 'pending' });
  });

  it('lets a scoped monitor see only its workflows (and the agent pool)', async () => {
    const hub = await startHub({
      tokens: [
        { token: TOKENS.admin, role: 'admin' },
        { token: TOKENS.agent, role: 'agent' },
        { token: 'scoped-monitor-token', role: 'monitor', workflows: ['visible'] },
      ],
    });
    const client = await control(hub);
    const visible = await client.createWorkflow({ id: 'visible', userQuery: 'yes' });
    await client.createWorkflow({ id: 'hidden', userQuery: 'no' });
    await agent(hub, { agentId: 'pool-member', agentType: 'w' });
    const scoped = await monitor(hub, 'scoped-monitor-token');
    await expect(scoped.subscribe('hidden')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(scoped.summary('hidden')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(scoped.report('hidden', 'json')).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const docs = await scoped.subscribeAll();
    expect([...docs.keys()].sort()).toEqual(['@agents', 'visible']);
    expect(Object.keys(docs.get('@agents')!.state as object)).toEqual(['pool-member']);

    // A hidden workflow created now, and changed, must not reach the scoped monitor. An unscoped
    // one sees those changes first; a change to `visible` after them then reaches both, so
    // anything broadcast about the hidden one would have arrived at the scoped one before it.
    const admin = await monitor(hub, TOKENS.admin);
    const everything = await admin.subscribeAll();
    const laterHidden = await client.createWorkflow({ id: 'later-hidden', userQuery: 'no' });
    await laterHidden.start();
    await (everything.get('later-hidden') ?? (await admin.subscribe('later-hidden'))).until((_, at) => at >= laterHidden.version);
    await visible.start();
    await expectInSync(hub, docs.get('visible')!);
    expect([...docs.keys()].sort()).toEqual(['@agents', 'visible']);
  });
});

