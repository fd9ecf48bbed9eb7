import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../server/store/embedded-store.ts';
import { readSegment, segmentName } from '../server/store/journal.ts';
import { decodeRecord, encodeRecord, encodeRecords, type JournalRecord } from '../server/store/records.ts';
import { recover } from '../server/store/recovery.ts';
import { tempDir } from './helpers/hub.ts';

const record = (seq: number, value: number): JournalRecord => ({
  seq,
  at: 1000 + seq,
  changes: [{ doc: 'wf1', v: seq, ops: seq === 1 ? [{ op: 'add', path: '', value: { n: value } }] : [{ op: 'replace', path: '/n', value }] }],
});

describe('journal records', () => {
  it('round-trip through encode and decode', () => {
    const line = encodeRecord(record(1, 7));
    expect(line.endsWith('\n')).toBe(true);
    expect(decodeRecord(line.slice(0, -1))).toEqual(record(1, 7));
  });

  it('are written in batches byte for byte as one by one, whatever the characters', () => {
    const records = [record(1, 7), { ...record(2, 8), changes: [{ doc: 'wf1', v: 2, ops: [{ op: 'replace' as const, path: '/n', value: 'ünïcødé ✓ 🚀 \u0000' }] }] }, record(3, 9)];
    expect(encodeRecords(records).toString('utf8')).toBe(records.map(encodeRecord).join(''));
    expect(encodeRecords([]).length).toBe(0);
  });

  it('are refused when a byte changed (checksum)', () => {
    const line = encodeRecord(record(2, 7)).slice(0, -1).replace('"value":7', '"value":8');
    expect(decodeRecord(line)).toBeNull();
  });
});

describe('journal recovery', () => {
  it('drops a torn last record, keeps the ones before it and cuts the file back', async () => {
    const dir = tempDir();
    const file = join(dir, segmentName(1));
    const good = encodeRecord(record(1, 1)) + encodeRecord(record(2, 2));
    writeFileSync(file, good + encodeRecord(record(3, 3)).slice(0, 20));
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 2, doc: { n: 2 } });
    expect(recovered.warnings).toHaveLength(1);
    expect(readFileSync(file, 'utf8')).toBe(good);
  });

  it('drops a corrupt last record (bad checksum) with a warning', async () => {
    const dir = tempDir();
    const file = join(dir, segmentName(1));
    writeFileSync(file, encodeRecord(record(1, 1)) + encodeRecord(record(2, 2)).replace('"value":2', '"value":9'));
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 1, doc: { n: 1 } });
    expect(recovered.warnings[0]).toMatch(/dropped a torn or corrupt last record/);
  });

  it('refuses to start when a record in the middle is corrupt, naming the file and line', () => {
    const dir = tempDir();
    const file = join(dir, segmentName(1));
    writeFileSync(file, encodeRecord(record(1, 1)) + 'garbage\n');
    appendFileSync(file, encodeRecord(record(3, 3)));
    expect(() => readSegment(file)).toThrow(/corrupt at line 2/);
  });

  it('replays segments in order on top of the snapshot', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ format: 1, segment: 1, seq: 1, docs: [['wf1', { v: 1, doc: { n: 1 } }]] }));
    writeFileSync(join(dir, segmentName(2)), encodeRecord(record(2, 2)));
    writeFileSync(join(dir, segmentName(3)), encodeRecord(record(3, 3)));
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
    expect(recovered.seq).toBe(3);
    expect(recovered.lastSegment).toBe(3);
  });

  it('refuses an unreadable snapshot instead of starting empty', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'snapshot.json'), '{"format":1,"docs":{');
    await expect(recover(dir)).rejects.toThrow(/snapshot.*unreadable/);
  });
});

describe('embedded store', () => {
  it.each([true, false])('keeps the journal readable when a snapshot is asked for while a batch is being written (fsync %s)', async (fsync) => {
    const dir = tempDir();
    const store = new EmbeddedStore({ dataDir: dir, fsync, snapshotAfterBytes: Number.MAX_SAFE_INTEGER, onWarning: (m) => expect.fail(m) });
    await store.open();
    await store.append(encodeRecord(record(1, 1)));
    const writing = store.append(encodeRecord(record(2, 2)));
    const snapshot = store.snapshot();
    await writing;
    await store.append(encodeRecord(record(3, 3)));
    await snapshot;
    await store.close();
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
    expect(recovered.warnings).toEqual([]);
  });
});
