import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Journal, segmentName } from '../server/store/journal.ts';
import { encodeRecords, type JournalRecord } from '../server/store/records.ts';
import { codeOf } from './helpers/errors.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';

/** Faults of the disk under the journal, switched on by the test: writes and cut-backs that fail. */
const faults = vi.hoisted(() => ({ write: false, cutBack: false }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const failing = (code: string) => Object.assign(new Error(`${code}: the disk failed`), { code });
  return {
    ...fs,
    writeSync: (...args: Parameters<typeof fs.writeSync>) => {
      if (faults.write) throw failing('ENOSPC');
      return fs.writeSync(...args);
    },
    ftruncateSync: (...args: Parameters<typeof fs.ftruncateSync>) => {
      if (faults.cutBack) throw failing('EIO');
      return fs.ftruncateSync(...args);
    },
  };
});

const record = (seq: number): JournalRecord => ({ seq, at: 1000 + seq, changes: [{ doc: 'wf1', v: seq, ops: [{ op: 'add', path: '/n', value: seq }] }] });

describe('a journal whose refused batch cannot be cut back off the disk', () => {
  it('refuses every later batch, so that none is acknowledged after what the failed write left', async () => {
    const dir = tempDir();
    const journal = Journal.create(dir, 0, false);
    const kept = encodeRecords([record(1)]);
    await journal.append(kept);
    faults.write = true;
    faults.cutBack = true;
    await expect(journal.append(encodeRecords([record(2)]))).rejects.toThrow('ENOSPC');
    faults.write = false;
    faults.cutBack = false;
    await expect(journal.append(encodeRecords([record(2)]))).rejects.toThrow(/could not be cut back after a failed write \(EIO: the disk failed\)/);
    expect(readFileSync(join(dir, segmentName(1)))).toEqual(kept);
  });

  it('turns the hub unhealthy: /healthz answers 503 saying a restart is needed, where it said ok while every change was refused', async () => {
    const hub = await startHub();
    const client = await control(hub);
    await client.createWorkflow({ userQuery: 'stored' });
    expect((await fetch(`${hub.url}/healthz`)).status).toBe(200);
    faults.write = true;
    faults.cutBack = true;
    expect(await codeOf(client.createWorkflow({ userQuery: 'refused' }))).toBe('UNAVAILABLE');
    faults.write = false;
    faults.cutBack = false;
    expect(await codeOf(client.createWorkflow({ userQuery: 'refused too' }))).toBe('UNAVAILABLE');
    const health = await fetch(`${hub.url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE', message: expect.stringMatching(/refuses every change until it restarts: .*could not be cut back/) } });
  });
});
