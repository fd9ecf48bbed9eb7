import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectControl, type ControlClient } from '../client-sdk/index.ts';
import { createHub } from '../server/index.ts';
import { backupDataDir } from '../server/store/backup.ts';
import { segmentName } from '../server/store/journal.ts';
import { encodeRecords } from '../server/store/records.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';
import { spawnCli } from './helpers/process.ts';
import { logRecorder } from './helpers/log-recorder.ts';
import { untilTrue } from './helpers/wait.ts';

/** Snapshots every 32 KB of journal (a few times a second under the load) and archives each workflow as it ends: both happen while backups copy. */
const BUSY = { snapshotAfterBytes: 32_768, snapshotJournalRatio: 0, keepFinishedMs: 0, sweepIntervalMs: 10 };

/** A snapshot after every 1 KB of journal: under the load, the next one is written as soon as the last is in place. */
const CHURNING = { snapshotAfterBytes: 1024, snapshotJournalRatio: 0, sweepIntervalMs: 10 };

/** The inode of the data directory's snapshot, which each new snapshot replaces (0: none yet). */
const snapshotInode = (dataDir: string) => (existsSync(join(dataDir, 'snapshot.json')) ? statSync(join(dataDir, 'snapshot.json')).ino : 0);

/** The backups' staging folders in a data directory. */
const stagingFolders = (dataDir: string) => readdirSync(dataDir).filter((name) => name.startsWith('.backup.'));

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
      // Half of them as where the data directory refuses hard links: copying the live files.
      const result = await backupDataDir(dataDir, dest, { links: i % 2 === 0 });
      expect(existsSync(join(dest, 'hub.lock'))).toBe(false);
      backups.push({ dest, expected, result });
    }
    await load.stop();
    for (const { dest, expected } of backups) await holdsEverything(dest, expected);
    expect(backups.reduce((sum, b) => sum + b.result.archived, 0)).toBeGreaterThan(0);
  });

  it('copies the state at its first try while snapshots replace the journal without pause, holding every change acknowledged before it began', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir, ...CHURNING });
    const client = await control(hub);
    // A state of some size (2.5 MB), so that each copy of its snapshot lasts while the next ones are written.
    await Promise.all(Array.from({ length: 250 }, (_, i) => client.createWorkflow({ userQuery: `bulk ${i} ${'x'.repeat(9_000)}` })));
    const load = writeLoad(client);
    const first = snapshotInode(dataDir);
    await untilTrue(() => snapshotInode(dataDir) !== first, 'a snapshot written under the load');
    const backups = [];
    for (let i = 0; i < 3; i++) {
      const expected = new Map(load.acked);
      const dest = join(tempDir(), 'backup');
      // Copying the live files, a snapshot put in place meanwhile made it start again (and after 20 times, give up).
      backups.push({ dest, expected, result: await backupDataDir(dataDir, dest) });
    }
    await load.stop();
    expect(backups.map((b) => b.result.attempts)).toEqual([1, 1, 1]);
    expect(stagingFolders(dataDir)).toEqual([]);
    for (const { dest, expected } of backups) await holdsEverything(dest, expected);
  });

  it("removes a dead backup's staging folder at the hub's start and at the next backup, keeps a running one's, and a hub never reads them", async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    const client = await control(hub);
    const kept = await client.createWorkflow({ userQuery: 'kept' });
    await hub.close();
    // A backup killed after staging: its pid is that of a process that has ended; garbage where the hub's files would be.
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const live = `.backup.${process.pid}.000000000000`;
    // A pid alive again, taken by another process after the backup died: its start time tells them apart.
    const reused = `.backup.${process.pid}-1.0123456789ab`;
    const stageGarbage = (name: string) => {
      mkdirSync(join(dataDir, name));
      writeFileSync(join(dataDir, name, 'snapshot.json'), 'not a snapshot');
      writeFileSync(join(dataDir, name, '00000001.journal'), 'not a record\n');
      writeFileSync(join(dataDir, name, '99999999.journal'), 'not a record\n');
    };
    for (const name of [`.backup.${dead}.0123456789ab`, reused, live]) stageGarbage(name);
    // Its link to the hub's snapshot is what keeps the space of a snapshot the hub has since replaced.
    linkSync(join(dataDir, 'snapshot.json'), join(dataDir, `.backup.${dead}.0123456789ab`, 'held.json'));
    expect(statSync(join(dataDir, 'snapshot.json')).nlink).toBe(2);
    const log = logRecorder();
    const restarted = await startHub({ dataDir }, { logger: log.logger });
    expect(stagingFolders(dataDir)).toEqual([live]);
    expect(statSync(join(dataDir, 'snapshot.json')).nlink).toBe(1);
    expect(log.find(`removed .backup.${dead}.0123456789ab: the staging folder of a backup that did not finish`)).toHaveLength(1);
    expect(log.find(`removed ${reused}: the staging folder of a backup that did not finish`)).toHaveLength(1);
    expect((await (await control(restarted)).workflow(kept.id).get()).userQuery).toBe('kept');
    await restarted.close();

    // One killed while the hub ran: the next backup removes it.
    stageGarbage(`.backup.${dead}.ba9876543210`);
    const dest = join(tempDir(), 'backup');
    await backupDataDir(dataDir, dest);
    expect(stagingFolders(dataDir)).toEqual([live]);
    expect(readdirSync(dest).some((name) => name.startsWith('.backup.'))).toBe(false);
    await holdsEverything(dest, new Map([[kept.id, kept.version]]));
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
    // Reached through a symbolic link, it is inside all the same (else the reports' copy copied itself until ENAMETOOLONG).
    const links = tempDir();
    mkdirSync(join(hub.options.dataDir, 'workflows'), { recursive: true });
    symlinkSync(join(hub.options.dataDir, 'workflows'), join(links, 'reports'));
    symlinkSync(hub.options.dataDir, join(links, 'data'));
    await expect(backupDataDir(hub.options.dataDir, join(links, 'reports', 'copy'))).rejects.toThrow(`the backup must go outside ${hub.options.dataDir}`);
    expect(existsSync(inside)).toBe(false);
    await expect(backupDataDir(hub.options.dataDir, join(links, 'data'))).rejects.toThrow('the backup must go to another directory');
  });

  it('refuses a directory that holds no hub data, leaving no destination behind', async () => {
    const empty = tempDir();
    mkdirSync(join(empty, 'workflows'));
    const dest = join(tempDir(), 'backup');
    await expect(backupDataDir(empty, dest)).rejects.toThrow(`${empty} holds no hub data`);
    expect(existsSync(dest)).toBe(false);
  });

  it('copies a data directory a power loss left with a damaged last batch as a start takes it: that batch dropped from the damage on, with a warning; damage before it refused', async () => {
    const batch = (...seqs: number[]) =>
      encodeRecords(seqs.map((seq) => ({ seq, at: seq, changes: [{ doc: 'wf1', v: seq, ops: seq === 1 ? [{ op: 'add' as const, path: '', value: { n: seq } }] : [{ op: 'replace' as const, path: '/n', value: seq }] }] })), true);
    const acknowledged = batch(1, 2, 3);
    const last = batch(4, 5, 6, 7);
    /** The segment with zeros over 10 bytes of record `seq`'s line (a block that never reached the disk). */
    const zeroed = (seq: number) => {
      const text = Buffer.concat([acknowledged, last]);
      let at = 0;
      for (let n = 1; n < seq; n++) at = text.indexOf(10, at) + 1;
      return { text: Buffer.from(text).fill(0, at + 12, at + 22), at };
    };
    const source = tempDir();
    const inLast = zeroed(5);
    writeFileSync(join(source, segmentName(1)), inLast.text);
    const dest = join(tempDir(), 'backup');
    const result = await backupDataDir(source, dest);
    expect(result.seq).toBe(4);
    expect(result.warnings).toEqual([expect.stringMatching(/00000001\.journal: dropped records 5 on \(3 lines of the last batch written, which began at record 4\), damaged inside, at byte \d+ \(the write it belonged to was never acknowledged\)$/)]);
    expect(readFileSync(join(dest, segmentName(1)))).toEqual(inLast.text.subarray(0, inLast.at));
    expect(readFileSync(join(source, segmentName(1)))).toEqual(inLast.text);

    // Record 3's batch was followed by another: its fsync had returned.
    const other = tempDir();
    writeFileSync(join(other, segmentName(1)), zeroed(3).text);
    const refused = join(tempDir(), 'backup');
    await expect(backupDataDir(other, refused)).rejects.toThrow(/the copy would not start \(journal .*00000001\.journal is damaged at byte \d+ \(line 3\).*records after record 2 were acknowledged/);
    expect(existsSync(refused)).toBe(false);
  });
});
