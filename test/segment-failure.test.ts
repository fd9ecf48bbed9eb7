import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { EmbeddedStore } from '../server/index.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';

/** A data directory where no new file can be made (its mode changed, its inodes used up), switched on by the test. */
const faults = vi.hoisted(() => ({ newSegment: false }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return {
    ...fs,
    openSync: (...args: Parameters<typeof fs.openSync>) => {
      if (faults.newSegment && String(args[0]).endsWith('.journal') && args[1] === 'wx') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
      return fs.openSync(...args);
    },
  };
});

describe('a journal segment that cannot be created for a snapshot', () => {
  it('is warned of once per snapshotAfterBytes of journal, not at every write, and the snapshot is taken once it can be', async () => {
    const dataDir = tempDir();
    const warnings: string[] = [];
    const store = new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 2048, onWarning: (message) => warnings.push(message) });
    const hub = await startHub({ dataDir }, { store });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'written while no file can be made' });
    await wf.start();
    faults.newSegment = true;
    const update = async (n: number) => {
      await wf.updateProgress('stage', n % 100);
      await hub.settle();
    };
    let n = 0;
    while (warnings.length === 0 && n < 100) await update(n++);
    expect(warnings).toEqual([expect.stringMatching(/^snapshot failed, the journal is kept: EACCES/)]);
    // Writes go on, each far less than snapshotAfterBytes: no new warning for each.
    for (let i = 0; i < 3; i++) await update(n++);
    expect(warnings).toHaveLength(1);
    faults.newSegment = false;
    while (!existsSync(join(dataDir, 'snapshot.json')) && n < 200) {
      await update(n++);
      await store.snapshotSettled();
    }
    expect(existsSync(join(dataDir, 'snapshot.json'))).toBe(true);
  });
});
