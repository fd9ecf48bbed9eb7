import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectControl, type ControlClient } from '../client-sdk/index.ts';
import { createHub } from '../server/index.ts';
import { backupDataDir } from '../server/store/backup.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';
import { spawnCli } from './helpers/process.ts';
import { untilTrue } from './helpers/wait.ts';

/** Snapshots every 32 KB of journal (a few times a second under the load) and archives each workflow as it ends: both happen while backups copy. */
const BUSY = { snapshotAfterBytes: 32_768, snapshotJournalRatio: 0, keepFinishedMs: 0, sweepIntervalMs: 10 };

/**
 * Changes acknowledged without pause by two clients: workflows created, changed, completed (and
 * so archived), and one that lives on and changes with them. `acked` holds each workflow's
 * version as of its last acknowledged change.
 */
function writeLoad(client: ControlClient) {
  const acked = new Map<string, number>();
  let stopped = false;
  const loop = async (n: number) => {
    const live = await client.createWorkflow({ userQuery: `live ${n}` });
    const liveKpi = await live.addKpi({ name: 'k', target: 1 });
    acked.set(live.id, live.version);
    for (let i = 0; !stopped; i++) {
      const wf = await client.createWorkflow({ userQuery: `wf ${n}-${i}` });
      acked.set(wf.id, wf.version);
      const kpi = await wf.addKpi({ name: 'rate', target: 10 });
      for (let j = 0; j < 3; j++) {
        await wf.recordKpi(kpi.id, j);
        acked.set(wf.id, wf.version);
        await live.recordKpi(liveKpi.id, j);
        acked.set(live.id, live.version);
      }
      await wf.start();
      await wf.complete();
      acked.set(wf.id, wf.version);
    }
  };
  const loops = [loop(0), loop(1)];
  return {
    acked,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

const archivedFiles = (dataDir: string) => (existsSync(join(dataDir, 'archive')) ? readdirSync(join(dataDir, 'archive')).filter((f) => f.endsWith('.json')).length : 0);

/**
 * Starts a hub on the backup `dir` and checks that it holds every workflow of `expected` at its
 * version or later, and that every workflow it lists reads whole with the status it lists.
 */
async function holdsEverything(dir: string, expected: Map<string, number>, connect = (url: string) => connectControl({ url, token: 'test-admin-token' })): Promise<void> {
  const hub = await startHub({ dataDir: dir, keepFinishedMs: 3_600_000 });
  const client = await connect(hub.url);
  onTestFinished(() => client.close());
  const listed = new Map<string, string>();
  for await (const header of client.workflows()) listed.set(header.id, header.status);
  const behind: string[] = [];
  for (const id of expected.keys()) if (!listed.has(id)) behind.push(`${id} missing`);
  for (const [id, status] of listed) {
    const handle = client.workflow(id);
    expect((await handle.get()).status).toBe(status);
    if (handle.version < (expected.get(id) ?? 0)) behind.push(`${id} at v${handle.version} < v${expected.get(id)}`);
  }
  expect(behind).toEqual([]);
}

describe('backup', () => {
  it('copies a data directory while changes are acknowledged, snapshots replace the journal and workflows are archived: each copy starts holding every change acknowledged before it began', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir, ...BUSY });
    const load = writeLoad(await control(hub));
    await untilTrue(() => archivedFiles(dataDir) >= 5, 'workflows archived under the load');
    const backups = [];
    for (let i = 0; i < 4; i++) {
      const expected = new Map(load.acked);
      const dest = join(tempDir(), 'backup');
      const result = await backupDataDir(dataDir, dest);
      expect(existsSync(join(dest, 'hub.lock'))).toBe(false);
      backups.push({ dest, expected, result });
    }
    await load.stop();
    for (const { dest, expected } of backups) await holdsEverything(dest, expected);
    expect(backups.reduce((sum, b) => sum + b.result.archived, 0)).toBeGreaterThan(0);
  });

  it('`switchboard backup` copies a running hub from another process; the copy starts with the same generated tokens', async () => {
    const dataDir = tempDir();
    // Without tokens: the hub generates its own into tokens.json, which the copy must keep.
    const hub = await createHub({ port: 0, logLevel: 'silent', dataDir, ...BUSY });
    onTestFinished(() => hub.close());
    const admin = (JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as Array<{ role: string; token: string }>).find((t) => t.role === 'admin')!.token;
    const client = await connectControl({ url: hub.url, token: admin });
    onTestFinished(() => client.close());
    const load = writeLoad(client);
    await untilTrue(() => archivedFiles(dataDir) >= 5, 'workflows archived under the load');
    const expected = new Map(load.acked);
    const dest = join(tempDir(), 'backup');
    const cli = spawnCli(['backup', '--data-dir', dataDir, '--to', dest]);
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.stdout()).toMatch(new RegExp(`backed up .* to ${dest}: journal up to record \\d+`));
    await load.stop();

    const restored = await createHub({ port: 0, logLevel: 'silent', dataDir: dest, keepFinishedMs: 3_600_000 });
    onTestFinished(() => restored.close());
    const again = await connectControl({ url: restored.url, token: admin });
    onTestFinished(() => again.close());
    for (const [id, v] of expected) {
      const handle = again.workflow(id);
      await handle.get();
      expect(handle.version, id).toBeGreaterThanOrEqual(v);
    }
  });

  it('copies an archive of the first format whose index names a file it lost: the rest is copied, the lost one named, and the copy serves as the source does', async () => {
    const source = tempDir();
    cpSync(fileURLToPath(new URL('./fixtures/archive-format-0', import.meta.url)), source, { recursive: true });
    unlinkSync(join(source, 'archive', 'wf_AtnQFeKgx88q.json'));
    const dest = join(tempDir(), 'backup');
    const result = await backupDataDir(source, dest);
    expect(result).toMatchObject({ archived: 1, lostArchived: ['wf_AtnQFeKgx88q'] });

    const hub = await startHub({ dataDir: dest, keepFinishedMs: 60_000 });
    const client = await control(hub);
    expect(await client.workflow('wf_bPInj3ikfQId').summary()).toMatchObject({ status: 'completed' });
    await expect(client.workflow('wf_AtnQFeKgx88q').get()).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('refuses a destination that is not empty, or is a file, and writes nothing there', async () => {
    const hub = await startHub({ dataDir: tempDir() });
    await (await control(hub)).createWorkflow({ userQuery: 'kept' });
    const dest = tempDir();
    writeFileSync(join(dest, 'notes.txt'), 'mine');
    const refused = spawnCli(['backup', '--data-dir', hub.options.dataDir, '--to', dest]);
    expect(await refused.exited).toBe(2);
    expect(refused.output()).toContain(`${dest} is not empty; give a new or empty directory`);
    expect(readdirSync(dest)).toEqual(['notes.txt']);

    const file = join(dest, 'notes.txt');
    await expect(backupDataDir(hub.options.dataDir, file)).rejects.toThrow(`${file} exists and is not a directory`);
    expect(readFileSync(file, 'utf8')).toBe('mine');
    await expect(backupDataDir(hub.options.dataDir, hub.options.dataDir)).rejects.toThrow('the backup must go to another directory');
    const inside = join(hub.options.dataDir, 'workflows', 'copy');
    await expect(backupDataDir(hub.options.dataDir, inside)).rejects.toThrow(`the backup must go outside ${hub.options.dataDir}`);
    expect(existsSync(inside)).toBe(false);
  });

  it('refuses a directory that holds no hub data, leaving no destination behind', async () => {
    const empty = tempDir();
    mkdirSync(join(empty, 'workflows'));
    const dest = join(tempDir(), 'backup');
    await expect(backupDataDir(empty, dest)).rejects.toThrow(`${empty} holds no hub data`);
    expect(existsSync(dest)).toBe(false);
  });
});
