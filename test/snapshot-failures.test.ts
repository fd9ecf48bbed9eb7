import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../server/index.ts';
import { writeSnapshot } from '../server/store/snapshot-writer.ts';
import { codeOf } from './helpers/errors.ts';
import { control, crashCopy, startHub, tempDir } from './helpers/hub.ts';

const PART = '.snapshot.json.part';

/** A hub whose store snapshots every 2 KB of journal, its warnings, and `writeUntil`: workflows written until `until` holds, each waited for to be stored and snapshotted. */
async function snapshottingHub() {
  const dataDir = tempDir();
  const warnings: string[] = [];
  const store = new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 2048, onWarning: (message) => warnings.push(message) });
  const hub = await startHub({ dataDir }, { store });
  const client = await control(hub);
  const writeUntil = async (until: () => boolean) => {
    for (let n = 0; !until(); n++) {
      if (n === 100) throw new Error('still not so after 100 workflows');
      const wf = await client.createWorkflow({ userQuery: `filler ${n}` });
      for (let i = 0; i < 5; i++) await wf.updateProgress('stage', i);
      await hub.settle();
      await store.snapshotSettled();
    }
  };
  return { dataDir, warnings, hub, client, writeUntil };
}

describe('a snapshot that fails', () => {
  it('takes its unfinished file away, leaving the snapshot before it as it was', async () => {
    const dir = tempDir();
    const chunk = (text: string) => Buffer.from(text);
    const json = (chunks: () => AsyncGenerator<Buffer>) => ({ chunks: chunks(), release: () => undefined });
    const first = await writeSnapshot(dir, 1, 1, [{ key: 'w', v: 1, json: json(async function* () { yield chunk('{"a":1}'); }) }], undefined);
    const before = readFileSync(join(dir, 'snapshot.json'));
    // The disk fails half way through the next one (as a full one does).
    const failing = writeSnapshot(dir, 2, 2, [
      {
        key: 'w',
        v: 2,
        json: json(async function* () {
          yield chunk(`{"a":"${'x'.repeat(2 << 20)}`);
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        }),
      },
    ], first.index);
    await expect(failing).rejects.toThrow('no space left on device');
    expect(existsSync(join(dir, PART))).toBe(false);
    expect(readFileSync(join(dir, 'snapshot.json'))).toEqual(before);
  });

  it('left by a crash, is deleted at the next start, which serves what was stored', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'kept' });
    await hub.close();
    writeFileSync(join(dataDir, PART), Buffer.alloc(1 << 20, 'x'));
    const again = await startHub({ dataDir });
    expect(existsSync(join(dataDir, PART))).toBe(false);
    expect((await (await control(again)).workflow(wf.id).get()).userQuery).toBe('kept');
  });

  it('leaves the manifest naming the segment written to, so that a start missing it refuses, also after a clean stop', async () => {
    const { dataDir, warnings, hub, client, writeUntil } = await snapshottingHub();
    // A folder where the snapshot's file goes: every snapshot fails, as on a full disk, after the journal moved to a new segment.
    mkdirSync(join(dataDir, PART));
    await writeUntil(() => warnings.some((warning) => warning.startsWith('snapshot failed')));
    await client.createWorkflow({ userQuery: 'acknowledged after the failed snapshot' });
    await hub.settle();
    const newest = (dir: string) => readdirSync(dir).filter((name) => name.endsWith('.journal')).sort().at(-1)!;
    const crashed = crashCopy(dataDir);
    unlinkSync(join(crashed, newest(crashed)));
    expect(await codeOf(startHub({ dataDir: crashed }))).toBe('INTERNAL');
    // A clean stop whose last snapshot fails too (written whole from memory, under its own temporary name)
    // leaves the segments after the snapshot: the newest of them is named.
    mkdirSync(join(dataDir, '.snapshot.json.tmp'));
    await hub.close();
    unlinkSync(join(dataDir, newest(dataDir)));
    const refusal = await startHub({ dataDir }).then(() => 'started', (error: Error) => error.message);
    expect(refusal).toMatch(/^journal .* is missing \(the manifest names it as the newest segment\); refusing to start without its records\. Restore it from a backup, or, to start from the records before it, run `switchboard start --truncate-damaged-journal` once\.$/);
  });

  it('copies nothing from a snapshot on disk damaged since it was written: the next one is written from memory', async () => {
    const { dataDir, warnings, client, writeUntil } = await snapshottingHub();
    const victim = await client.createWorkflow({ userQuery: 'ORIGINAL-QUERY-TEXT' });
    const snapshot = join(dataDir, 'snapshot.json');
    await writeUntil(() => existsSync(snapshot) && readFileSync(snapshot, 'utf8').includes('ORIGINAL-QUERY-TEXT'));
    // Damaged while the hub runs (bit rot, a stray edit), keeping its length.
    writeFileSync(snapshot, readFileSync(snapshot, 'utf8').replace('ORIGINAL-QUERY-TEXT', 'TAMPERED-QUERY-TEXT'));
    await writeUntil(() => warnings.some((warning) => warning.includes('no longer matches its checksum')));
    expect(warnings.find((warning) => warning.includes('no longer matches'))).toBe(`snapshot failed, the journal is kept: ${snapshot} no longer matches its checksum (damaged since it was written), so nothing is copied from it; the next snapshot is written from memory`);
    await writeUntil(() => readFileSync(snapshot, 'utf8').includes('ORIGINAL-QUERY-TEXT'));
    expect(readFileSync(snapshot, 'utf8')).not.toContain('TAMPERED');
    const again = await startHub({ dataDir: crashCopy(dataDir) });
    expect((await (await control(again)).workflow(victim.id).get()).userQuery).toBe('ORIGINAL-QUERY-TEXT');
  });
});
