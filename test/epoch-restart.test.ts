import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectControl, connectMonitor, type Mirror, type MonitorClient } from '../client-sdk/index.ts';
import type { RunningHub } from '../server/index.ts';
import type { Subscription } from '../shared/schemas/monitor.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import type { TokenGrant } from '../shared/schemas/tokens.ts';
import { agent, control, crashCopy, monitor, startHub, tempDir } from './helpers/hub.ts';
import { startHubProcess } from './helpers/process.ts';
import { deferred, untilOrder, untilTrue } from './helpers/wait.ts';

/** How each answer and patch reached each mirror, by document. */
function recordKinds(mirrors: Iterable<Mirror>): Map<string, string[]> {
  const kinds = new Map<string, string[]>();
  for (const mirror of mirrors) {
    kinds.set(mirror.doc, []);
    mirror.on('change', (change) => kinds.get(mirror.doc)!.push(change.snapshot ? 'snapshot' : 'patches'));
  }
  return kinds;
}

/** Stops the monitor from reconnecting by itself and resolves once its connection is down. */
function holdBack(watcher: MonitorClient): Promise<void> {
  const gone = deferred();
  watcher.connection.socket.io.reconnection(false);
  watcher.connection.socket.once('disconnect', () => gone.resolve());
  return gone.promise;
}

/**
 * Lets the monitor connect again; resolves with the subscription answers the hub sent it, once one
 * has come for each of `docs` (the SDK resubscribes on its own at the reconnect).
 */
async function letBack(watcher: MonitorClient, docs: readonly string[]): Promise<Subscription[]> {
  const answers: Subscription[] = [];
  const all = deferred();
  const connection = watcher.connection;
  const request = connection.request.bind(connection);
  // Observes the replies only: the request goes through the real connection.
  connection.request = (async (event: never, payload: never, options?: never) => {
    const reply = (await request(event, payload, options)) as unknown;
    if (event === 'subscribeAll') answers.push(...(reply as { docs: Subscription[] }).docs);
    if (event === 'subscribe') answers.push(reply as Subscription);
    if (docs.every((doc) => answers.some((answer) => answer.doc === doc))) all.resolve();
    return reply;
  }) as typeof connection.request;
  connection.socket.io.reconnection(true);
  connection.socket.connect();
  await all.promise;
  return answers;
}

/** The hub's document as JSON (the pool before its first agent is {}), and its version. */
function hubDoc(hub: RunningHub, doc: string): { version: number; json: string } {
  const state = doc === '@agents' ? (hub.state.agents ?? {}) : hub.state.workflows.get(doc);
  return { version: hub.state.versions.get(doc) ?? 0, json: JSON.stringify(state) };
}

type Held = { version: number; epoch: string };

/** A fresh monitor's first answer for `doc`: a snapshot, with its version and epoch. */
async function snapshotOf(hub: RunningHub, doc: string): Promise<Held & { state?: unknown }> {
  const answer = await (await monitor(hub)).connection.request('subscribe', { doc });
  if (answer.mode !== 'snapshot') throw new Error(`a first subscription was answered ${answer.mode}`);
  return answer;
}

/** What a fresh monitor that holds `held` of `doc` is answered. */
async function resumeOn(hub: RunningHub, doc: string, held: Held): Promise<Subscription> {
  return (await monitor(hub)).connection.request('subscribe', { doc, version: held.version, epoch: held.epoch });
}

describe('the epoch across restarts', () => {
  it('resumes unchanged documents without a snapshot across a clean restart, and sends one for a document changed meanwhile', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const client = await control(first);
    const done = await client.createWorkflow({ id: 'done', userQuery: 'finished, still in memory' });
    await done.start();
    const worker = await agent(first, { agentId: 'w1', agentType: 'w' });
    await worker.onTask('t', () => ({ result: { ok: true } }));
    await done.createWorkOrder({ id: 'o1', taskType: 't', input: {} });
    await untilOrder(first, done.id, 'o1', 'completed');
    await done.complete();
    await worker.close();
    const idle = await client.createWorkflow({ id: 'idle', userQuery: 'nothing happens' });
    await idle.start();
    const changed = await client.createWorkflow({ id: 'changed', userQuery: 'changes while the monitor is away' });
    await changed.start();
    await client.close();

    const watcher = await monitor(first);
    const all = [...(await watcher.subscribeAll()).values()];
    const summary = await watcher.subscribe(idle.id, { view: { kind: 'summary' } });
    await first.settle();
    for (const mirror of all) await mirror.until((_, at) => at >= hubDoc(first, mirror.doc).version, { what: `${mirror.doc} caught up` });
    const before = new Map(all.map((mirror) => [mirror.doc, mirror.version]));
    const kinds = recordKinds(all);

    const away = holdBack(watcher);
    await first.close();
    await away;
    const second = await startHub({ dataDir, port: first.port });
    await (await control(second)).workflow(changed.id).updateProgress('load', 40);
    await second.settle();
    const answers = await letBack(watcher, [...all.map((mirror) => mirror.doc), summary.doc]);
    for (const mirror of [...all, summary]) await mirror.until((_, at) => at >= (mirror === summary ? 0 : hubDoc(second, mirror.doc).version), { what: `${mirror.doc} caught up` });

    // What the hub sent: no snapshot of a document whose version did not move.
    const unchanged = [...before].filter(([doc, version]) => hubDoc(second, doc).version === version).map(([doc]) => doc);
    expect(unchanged).toEqual(expect.arrayContaining(['done', 'idle']));
    const modes = new Map(answers.map((answer) => [answer.doc, answer.mode]));
    for (const doc of unchanged) expect(modes.get(doc), doc).toBe('patches');
    expect(modes.get('changed')).toBe('snapshot');
    expect(modes.get(summary.doc)).toBe('patches');
    expect(kinds.get('changed')).toEqual(['snapshot']);
    for (const mirror of all) {
      const { version, json } = hubDoc(second, mirror.doc);
      expect(mirror.version, mirror.doc).toBe(version);
      expect(JSON.stringify(mirror.state), mirror.doc).toBe(json);
    }
    const fresh = await (await monitor(second)).subscribe(idle.id, { view: { kind: 'summary' } });
    expect(summary.version).toBe(fresh.version);
    expect(summary.state).toEqual(fresh.state);
  });

  it('keeps the epoch through a prune and a clean restart: the other documents resume by patches, a workflow made anew under a pruned id comes whole', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir, keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(first);
    const kept = await client.createWorkflow({ id: 'kept', userQuery: 'live throughout' });
    await kept.start();
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    await old.start();
    await old.updateProgress('load', 50);
    const watcher = await monitor(first);
    const mirrors = [await watcher.subscribe('kept'), await watcher.subscribe<Workflow>('nightly')];
    await old.cancel('done');
    await untilTrue(() => !first.state.workflows.has('nightly'), 'the old one archived');
    await mirrors[1]!.until((w) => w.status === 'cancelled', { what: 'the old one ended in the mirror' });

    const away = holdBack(watcher);
    watcher.connection.socket.disconnect();
    await away;
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual(['nightly']);
    // Made anew under the pruned id, and changed up to the very version the watcher holds of the old one.
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    for (let percentage = 1; fresh.version < mirrors[1]!.version; percentage++) await fresh.updateProgress('load', percentage);
    expect(fresh.version).toBe(mirrors[1]!.version);
    await first.close();
    const second = await startHub({ dataDir, port: first.port, keepFinishedMs: 0 });

    const answers = await letBack(watcher, ['kept', 'nightly']);
    const modes = new Map(answers.map((answer) => [answer.doc, answer.mode]));
    expect(modes.get('kept')).toBe('patches');
    expect(modes.get('nightly')).toBe('snapshot');
    await mirrors[1]!.until((w) => w.userQuery === 'today', { what: 'the new one mirrored' });
    for (const mirror of mirrors) expect(JSON.stringify(mirror.state), mirror.doc).toBe(hubDoc(second, mirror.doc).json);
  });

  it('answers versions of a workflow pruned two clean stops ago whole, though the last stop kept only its own run’s deletions', async () => {
    const dataDir = tempDir();
    const settings = { dataDir, keepFinishedMs: 0, sweepIntervalMs: 10 };
    const first = await startHub(settings);
    const client = await control(first);
    await (await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' })).cancel('done');
    await untilTrue(() => !first.state.workflows.has('nightly'), 'the old one archived');
    const old = await snapshotOf(first, 'nightly');
    expect((await client.pruneArchive(0)).map((pruned) => pruned.workflowId)).toEqual(['nightly']);
    // Made anew in the same run, up to the version held of the old one.
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    while (fresh.version < old.version) await fresh.updateProgress('load', fresh.version);
    await first.close();
    const second = await startHub({ ...settings, port: first.port });
    expect(await resumeOn(second, 'nightly', old)).toMatchObject({ mode: 'snapshot', state: { userQuery: 'today' } });
    await second.close();
    // The second stop's resume point names none of the first run's deletions: the first run's versions resume nothing.
    expect(JSON.parse(readFileSync(join(dataDir, 'manifest.json'), 'utf8')).deleted).toEqual([]);
    const third = await startHub({ ...settings, port: first.port });
    expect(await resumeOn(third, 'nightly', old)).toMatchObject({ mode: 'snapshot', state: { userQuery: 'today' } });
  });

  it('resumes versions of a clean stop in the next run only, never in a start after that run crashed', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    await (await control(first)).createWorkflow({ id: 'wf', userQuery: 'kept' });
    const resume = async (hub: RunningHub, held: Held) => (await resumeOn(hub, 'wf', held)).mode;
    const held = await snapshotOf(first, 'wf');
    await first.close();
    const second = await startHub({ dataDir });
    expect(await resume(second, held)).toBe('patches');
    // A start from what a crash of the second would leave: the resume point left with its start.
    expect(JSON.parse(readFileSync(join(dataDir, 'manifest.json'), 'utf8')).epoch).toBeUndefined();
    expect(await resume(await startHub({ dataDir: crashCopy(dataDir) }), held)).toBe('snapshot');
  });

  it('resumes on a copy of a stopped hub restored after the hub ran on only the versions of the stop it was copied at', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const wf = await (await control(first)).createWorkflow({ id: 'wf', userQuery: 'copied when stopped' });
    const atStop = await snapshotOf(first, 'wf');
    await first.close();
    const copy = crashCopy(dataDir);
    // The hub runs on: a monitor there is answered versions the copy never had, under that run's epoch.
    const second = await startHub({ dataDir });
    const later = (await control(second)).workflow(wf.id);
    await later.updateProgress('load', 10);
    const seen = await snapshotOf(second, 'wf');
    expect(seen.epoch).not.toBe(atStop.epoch);
    await second.close();

    // The copy restored: a version of the stop it was copied at still resumes by patches.
    const restored = await startHub({ dataDir: copy });
    expect(await resumeOn(restored, 'wf', atStop)).toMatchObject({ mode: 'patches', from: atStop.version, ops: [] });
    // Made to reach the version the later run reached, with other content.
    for (let percentage = 50; restored.state.versions.get('wf')! < seen.version; percentage++) await (await control(restored)).workflow('wf').updateProgress('other', percentage);
    expect(restored.state.versions.get('wf')).toBe(seen.version);
    const again = await resumeOn(restored, 'wf', seen);
    expect(again).toMatchObject({ mode: 'snapshot', version: seen.version });
    expect((again as { state: Workflow }).state.stages['load']).toBeUndefined();
  });

  it('sends snapshots again after a hub is killed (kill -9), and the mirror equals the hub', async () => {
    const dataDir = tempDir();
    const first = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    const grants = JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as TokenGrant[];
    const admin = grants.find((grant) => grant.role === 'admin')!.token;
    const client = await connectControl({ url: first.url, token: admin });
    const wf = await client.createWorkflow({ id: 'wf', userQuery: 'crash' });
    await wf.start();
    await client.close();
    const watcher = await connectMonitor({ url: first.url, token: admin });
    try {
      const all = await watcher.subscribeAll();
      const kinds = recordKinds(all.values());
      const away = holdBack(watcher);
      first.child.kill('SIGKILL');
      await first.exited;
      await away;
      const second = await startHubProcess(['--port', new URL(first.url).port, '--data-dir', dataDir]);
      const reader = await connectMonitor({ url: second.url, token: admin });
      try {
        const now = await reader.subscribeAll();
        // Each mirror changes once, by the snapshot of its resubscription.
        const changes = [...all.values()].map((mirror) => new Promise<void>((resolve) => void mirror.on('change', () => resolve())));
        const answers = await letBack(watcher, [...all.keys()]);
        await Promise.all(changes);
        for (const mirror of all.values()) {
          expect(answers.find((answer) => answer.doc === mirror.doc)!.mode, mirror.doc).toBe('snapshot');
          expect(kinds.get(mirror.doc), mirror.doc).toEqual(['snapshot']);
          expect(mirror.version).toBe(now.get(mirror.doc)!.version);
          expect(mirror.state).toEqual(now.get(mirror.doc)!.state);
        }
        expect(all.get('wf')!.epoch).not.toBe(undefined);
      } finally {
        reader.close();
      }
    } finally {
      watcher.close();
    }
  });
});
