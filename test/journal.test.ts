import { appendFileSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CompactionWorker } from '../server/store/compaction.ts';
import { EmbeddedStore } from '../server/store/embedded-store.ts';
import { segmentName } from '../server/store/journal.ts';
import { decodeRecord, encodeRecord, encodeRecords, replayRecord, type JournalRecord } from '../server/store/records.ts';
import { recover } from '../server/store/recovery.ts';
import { readSnapshot, snapshotText } from '../server/store/snapshot.ts';
import { crashCopy, tempDir } from './helpers/hub.ts';

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

  it('are written in batches byte for byte as one by one, whatever the characters, each with its place in the batch', () => {
    const records = [record(1, 7), { ...record(2, 8), changes: [{ doc: 'wf1', v: 2, ops: [{ op: 'replace' as const, path: '/n', value: 'ünïcødé ✓ 🚀 \u0000' }] }] }, record(3, 9)];
    const lines = encodeRecords(records, true).toString('utf8');
    expect(lines).toBe(records.map((r, position) => encodeRecord(r, position)).join(''));
    // The first (or only) record of a batch is written as it was before batches were marked.
    expect(lines.split('\n')[0]).toBe(encodeRecord(record(1, 7)).slice(0, -1));
    expect(lines.split('\n').slice(0, 3).map((line) => decodeRecord(line))).toEqual([records[0], { ...records[1], position: 1 }, { ...records[2], position: 2 }]);
    expect(encodeRecords([]).length).toBe(0);
  });

  it('fold the ops of a bulk command into the orders it created, and replay to the same documents', () => {
    const ops: JournalRecord['changes'][number]['ops'] = [];
    for (let i = 0; i < 12; i++) ops.push({ op: 'add', path: `/orders/o${i}`, value: { id: `o${i}`, state: 'pending', queuedAt: null } });
    for (let i = 0; i < 12; i++) {
      ops.push({ op: 'replace', path: `/orders/o${i}/state`, value: 'queued' });
      ops.push({ op: 'replace', path: `/orders/o${i}/queuedAt`, value: i });
      ops.push({ op: 'replace', path: '/queued', value: i + 1 });
    }
    const bulk: JournalRecord = { seq: 2, at: 1002, changes: [{ doc: 'wf1', v: 2, ops }] };
    const decoded = decodeRecord(encodeRecord(bulk).slice(0, -1))!;
    expect(decoded.changes[0]!.ops).toHaveLength(13);
    expect(decoded.changes[0]!.ops[0]).toEqual({ op: 'add', path: '/orders/o0', value: { id: 'o0', state: 'queued', queuedAt: 0 } });
    const replayed = (record: JournalRecord) => {
      const docs = new Map([['wf1' as const, { v: 1, doc: { orders: {}, queued: 0 } as unknown }]]);
      replayRecord(docs, structuredClone(record));
      return docs.get('wf1');
    };
    expect(replayed(decoded)).toEqual(replayed(bulk));
    // A command with a few ops is written as it is.
    expect(decodeRecord(encodeRecord(record(2, 7)).slice(0, -1))).toEqual(record(2, 7));
  });

  it('lay a record out as one flat array and round-trip every kind of op', () => {
    const mixed: JournalRecord = {
      seq: 4,
      at: 1004,
      changes: [
        { doc: 'wf1', v: 4, ops: [{ op: 'add', path: '/a', value: { x: [1, null] } }, { op: 'remove', path: '/b' }, { op: 'replace', path: '/c~1d', value: '' }] },
        { doc: '@agents', v: 9, ops: [{ op: 'replace', path: '', value: {} }] },
      ],
    };
    const line = encodeRecord(mixed).slice(0, -1);
    expect(JSON.parse(line.slice(9))).toEqual([4, 1004, 'wf1', 4, ['+', '/a', { x: [1, null] }, '-', '/b', '=', '/c~1d', ''], '@agents', 9, ['=', '', {}]]);
    expect(decodeRecord(line)).toEqual(mixed);
  });

  it('of the first format (one object per record) are still read', () => {
    const json = JSON.stringify(record(2, 7));
    expect(decodeRecord(`${crc32(json).toString(16).padStart(8, '0')} ${json}`)).toEqual(record(2, 7));
  });

  it('are refused when the checksum holds but the shape is not a record', () => {
    for (const json of ['[1]', '[1,2,"wf1",3]', '[1,2,"wf1",3,["?","/a",1]]', '[1,2,"wf1",3,["=",7,1]]', '[1,2,0]', '[1,2,"wf1",3,[],1.5]', '[1,2,"x"]', '{"seq":1}', '42']) {
      expect(decodeRecord(`${crc32(json).toString(16).padStart(8, '0')} ${json}`), json).toBeNull();
    }
  });

  it('are refused when a byte changed (checksum)', () => {
    const line = encodeRecord(record(2, 7)).slice(0, -1).replace(',7]', ',8]');
    expect(decodeRecord(line)).toBeNull();
  });
});

/** What a kill -9 leaves after a store snapshotted record 1 and then wrote record 2 (segment 2). */
async function snapshotThenRecord(dir: string): Promise<void> {
  const store = new EmbeddedStore({ dataDir: dir, fsync: false, snapshotAfterBytes: Number.MAX_SAFE_INTEGER, onWarning: (m) => expect.fail(m) });
  await store.open();
  await store.append(encodeRecord(record(1, 1)));
  await store.snapshot();
  await store.append(encodeRecord(record(2, 2)));
}

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
    writeFileSync(file, encodeRecord(record(1, 1)) + encodeRecord(record(2, 2)).replace(',2]', ',9]'));
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 1, doc: { n: 1 } });
    expect(recovered.warnings[0]).toMatch(/dropped a torn or corrupt last record/);
  });

  it('refuses to start when a record in the middle is corrupt, naming the file and byte', async () => {
    const dir = tempDir();
    const file = join(dir, segmentName(1));
    writeFileSync(file, encodeRecord(record(1, 1)) + 'garbage\n');
    appendFileSync(file, encodeRecord(record(3, 3)));
    const offset = encodeRecord(record(1, 1)).length;
    await expect(recover(dir)).rejects.toThrow(new RegExp(`00000001\\.journal is damaged at byte ${offset} \\(line 2\\)`));
  });

  it('refuses a damaged last record when a later segment exists: only the newest segment can be torn by a crash', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, segmentName(1)), encodeRecord(record(1, 1)) + encodeRecord(record(2, 2)).slice(0, -7));
    writeFileSync(join(dir, segmentName(2)), encodeRecord(record(3, 3)));
    const before = readFileSync(join(dir, segmentName(1)));
    await expect(recover(dir)).rejects.toThrow(/00000001\.journal is damaged at byte \d+ \(line 2\): the record is cut short\. The records after record 1 were acknowledged/);
    expect(readFileSync(join(dir, segmentName(1)))).toEqual(before);
  });

  it('drops damage inside the last batch written, whole lines after it and all, as a power loss leaves a batch whose fsync never returned', async () => {
    const dir = tempDir();
    const file = join(dir, segmentName(1));
    const acknowledged = encodeRecords([record(1, 1), record(2, 2)], true);
    const last = encodeRecords([record(3, 3), record(4, 4), record(5, 5), record(6, 6)], true).toString('latin1');
    // A block of the last batch never reached the disk: zeros over record 4 and the start of record 5.
    const from = last.indexOf('\n') + 1;
    const to = last.indexOf('\n', from) + 10;
    writeFileSync(file, Buffer.concat([acknowledged, Buffer.from(last.slice(0, from) + '\0'.repeat(to - from) + last.slice(to), 'latin1')]));
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
    expect(recovered.seq).toBe(3);
    expect(recovered.warnings).toEqual([expect.stringMatching(/00000001\.journal: dropped records 4 on \(2 lines of the last batch written, which began at record 3\), damaged inside, at byte \d+ \(the write it belonged to was never acknowledged\)$/)]);
    expect(readFileSync(file)).toEqual(Buffer.concat([acknowledged, Buffer.from(last.slice(0, from), 'latin1')]));
  });

  it('drops damage inside the last batch only from a journal written with fsync: without, a power loss may damage batches already acknowledged', async () => {
    for (const fsync of [true, false]) {
      const dir = tempDir();
      const store = new EmbeddedStore({ dataDir: dir, fsync, snapshotAfterBytes: Number.MAX_SAFE_INTEGER, onWarning: (m) => expect.fail(m) });
      await store.open();
      // As the hub writes a batch (StateWriter): each record's place in it only when the store asks.
      const written = encodeRecords([record(1, 1), record(2, 2), record(3, 3)], store.marksBatches === true).toString('latin1');
      await store.append(written);
      const copy = crashCopy(dir);
      const file = join(copy, segmentName(1));
      const from = written.indexOf('\n') + 5;
      writeFileSync(file, Buffer.from(written.slice(0, from) + '\0'.repeat(10) + written.slice(from + 10), 'latin1'));
      if (fsync) expect((await recover(copy)).seq, 'with fsync').toBe(1);
      else await expect(recover(copy), 'without fsync').rejects.toThrow(/00000001\.journal is damaged at byte \d+ \(line 2\).*records after record 1 were acknowledged/);
    }
  });

  it('refuses damage with whole lines after it that are not all of one batch begun before the damage', async () => {
    const batch = (...seqs: number[]) => encodeRecords(seqs.map((seq) => record(seq, seq)), true).toString('utf8');
    const damaged = (text: string) => text.replace(',2]', ',9]');
    const cases = {
      // Record 2 rotted in an acknowledged batch: a later batch was written after it.
      'a later batch follows': batch(1) + damaged(batch(2, 3)) + batch(4, 5),
      // The damaged line was the last of its batch: the whole lines after it are a batch of their own.
      'the next batch begins after it': batch(1) + damaged(batch(2)) + batch(3, 4),
      // Lines written one per batch carry no place: nothing ties them to the damage.
      'single records': batch(1) + damaged(batch(2)) + batch(3),
      // A line that held no record, then the next record (of the same batch): not what a lost block leaves.
      'a line with no record in it': batch(1, 2).split('\n')[0] + '\ngarbage\n' + batch(1, 2).split('\n')[1] + '\n',
      // Nothing readable after the damaged line (the batch after it lost whole): which batch it was in is not known.
      'only unreadable bytes after it': batch(1) + damaged(batch(2, 3)).split('\n')[0] + '\n' + '\0'.repeat(40),
    };
    for (const [what, text] of Object.entries(cases)) {
      const dir = tempDir();
      writeFileSync(join(dir, segmentName(1)), text);
      await expect(recover(dir), what).rejects.toThrow(/00000001\.journal is damaged at byte \d+ \(line 2\).*were acknowledged/);
      expect(readFileSync(join(dir, segmentName(1)), 'utf8'), what).toBe(text);
    }
  });

  it('with truncateDamaged, starts from the records before the damage and deletes it and all after it, saying what', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, segmentName(1)), encodeRecord(record(1, 1)) + encodeRecord(record(2, 2)).replace(',2]', ',9]') + encodeRecord(record(3, 3)));
    writeFileSync(join(dir, segmentName(2)), encodeRecord(record(4, 4)) + encodeRecord(record(5, 5)));
    const recovered = await recover(dir, { truncateDamaged: true });
    expect(recovered.docs.get('wf1')).toEqual({ v: 1, doc: { n: 1 } });
    expect(recovered.warnings).toEqual([expect.stringMatching(/deleted 2 line\(s\) of 00000001\.journal from byte \d+, 00000002\.journal \(2 line\(s\)\); the state is as of record 1$/)]);
    expect(readFileSync(join(dir, segmentName(1)), 'utf8')).toBe(encodeRecord(record(1, 1)));
    expect(readdirSync(dir).filter((f) => f.endsWith('.journal'))).toEqual([segmentName(1)]);
  });

  it('refuses a journal with records missing between segments', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, segmentName(1)), encodeRecord(record(1, 1)));
    writeFileSync(join(dir, segmentName(3)), encodeRecord(record(4, 4)));
    await expect(recover(dir)).rejects.toThrow(/00000003\.journal is damaged at byte 0 \(line 1\): records 2 to 3 are missing before it/);
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

  it('refuses a snapshot without the manifest that names it, and a journal whose newest segment is gone', async () => {
    const dir = tempDir();
    await snapshotThenRecord(dir);
    // The snapshot holds record 1, segment 2 holds record 2, the manifest names both.
    const manifest = readFileSync(join(dir, 'manifest.json'));
    expect(readdirSync(dir).filter((f) => f.endsWith('.journal'))).toEqual([segmentName(2)]);
    unlinkSync(join(dir, segmentName(2)));
    await expect(recover(dir)).rejects.toThrow(/00000002\.journal is missing \(the manifest names it as the newest segment\)/);
    unlinkSync(join(dir, 'manifest.json'));
    await expect(recover(dir)).rejects.toThrow(/manifest\.json is missing while \S*snapshot\.json exists/);
    writeFileSync(join(dir, 'manifest.json'), manifest);
    writeFileSync(join(dir, segmentName(2)), encodeRecord(record(2, 2)));
    expect((await recover(dir)).docs.get('wf1')).toEqual({ v: 2, doc: { n: 2 } });
  });

  it('continues from the snapshot a compaction was replacing when it crashed before the new one was in place', async () => {
    const dir = tempDir();
    await snapshotThenRecord(dir);
    // The next compaction lists its snapshot beside the one on disk, then dies before renaming it into place.
    const onDisk = (await readSnapshot(dir))!.ref;
    const next = snapshotText({ segment: 2, seq: 2, docs: [['wf1', { v: 2, doc: { n: 2 } }]] });
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 1, snapshots: [next.ref, onDisk], segment: 3 }));
    writeFileSync(join(dir, segmentName(3)), encodeRecord(record(3, 3)));
    expect((await recover(dir)).docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
    // Had it renamed the new one into place, that one is taken.
    writeFileSync(join(dir, 'snapshot.json'), next.text);
    const recovered = await recover(dir);
    expect(recovered.docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
    expect(recovered.snapshot).toEqual(next.ref);
  });

  it('reads a snapshot of the first format (no checksum, no manifest) and writes it anew with both', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'snapshot.json'), JSON.stringify({ format: 1, segment: 1, seq: 1, docs: [['wf1', { v: 1, doc: { n: 1 } }]] }));
    writeFileSync(join(dir, segmentName(2)), encodeRecord(record(2, 2)));
    const store = new EmbeddedStore({ dataDir: dir, fsync: false, snapshotAfterBytes: Number.MAX_SAFE_INTEGER, onWarning: (m) => expect.fail(m) });
    expect((await store.open()).docs.get('wf1')).toEqual({ v: 2, doc: { n: 2 } });
    expect(await readSnapshot(dir)).toMatchObject({ format: 3, segment: 2, seq: 2 });
    await store.close();
    expect((await recover(dir)).docs.get('wf1')).toEqual({ v: 2, doc: { n: 2 } });
  });

  it('refuses an unreadable snapshot instead of starting empty', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'snapshot.json'), '{"format":1,"docs":{');
    await expect(recover(dir)).rejects.toThrow(/snapshot.*unreadable/);
  });
});

describe('embedded store', () => {
  it('counts the journal a crash left, which no snapshot holds, toward the next snapshot', async () => {
    const dir = tempDir();
    const first = encodeRecord(record(1, 1)) + encodeRecord(record(2, 2));
    const second = encodeRecord(record(3, 3));
    // Due once both runs' records are in the journal, and not before: neither run's own reaches it.
    const options = { dataDir: dir, fsync: false, snapshotAfterBytes: Buffer.byteLength(first) + Buffer.byteLength(second), snapshotJournalRatio: 0, onWarning: (m: string) => expect.fail(m) };
    const crashed = new EmbeddedStore(options);
    await crashed.open();
    await crashed.append(first);
    expect(crashed.snapshotDue()).toBe(false);
    // Killed: what it leaves has no snapshot of those records.
    const copy = crashCopy(dir);
    await crashed.close();
    const restarted = new EmbeddedStore({ ...options, dataDir: copy });
    await restarted.open();
    expect(restarted.snapshotDue()).toBe(false);
    await restarted.append(second);
    expect(restarted.snapshotDue()).toBe(true);
    await restarted.close();
  });

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

  it('writes a due snapshot from the documents it is handed, as they were when handed, and keeps the journal after it', async () => {
    const dir = tempDir();
    const store = new EmbeddedStore({ dataDir: dir, fsync: false, snapshotAfterBytes: 1, onWarning: (m) => expect.fail(m) });
    await store.open();
    await store.append(encodeRecord(record(1, 1)));
    await store.append(encodeRecord(record(2, 2)));
    expect(store.snapshotDue()).toBe(true);
    // Not what replaying the journal gives (n: 2): the snapshot is the documents handed over.
    const doc = { n: 42 };
    store.startSnapshot({ seq: 2, docs: [['wf1', { v: 2, doc }]] });
    // The hub changes its documents right after; the snapshot holds them as they were.
    doc.n = 43;
    expect(store.snapshotDue()).toBe(false);
    await store.append(encodeRecord(record(3, 3)));
    await store.snapshotSettled();
    expect(await readSnapshot(dir)).toMatchObject({ format: 3, segment: 1, seq: 2, docs: [['wf1', { v: 2, doc: { n: 42 } }]] });
    expect(readdirSync(dir).filter((f) => f.endsWith('.journal'))).toEqual([segmentName(2)]);
    expect((await recover(dir)).docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
    await store.close();
  });
});

describe('compaction worker', () => {
  it('serves snapshot after snapshot, and a failed job does not stop the next', async () => {
    const dir = tempDir();
    const compactor = new CompactionWorker();
    try {
      // Each compaction follows a rotation: the store has opened the next segment already.
      writeFileSync(join(dir, segmentName(1)), encodeRecord(record(1, 1)));
      writeFileSync(join(dir, segmentName(2)), '');
      await expect(compactor.compact(dir, 1)).resolves.toEqual({ seq: 1, docs: 1, pausedMs: 0 });
      writeFileSync(join(dir, segmentName(2)), encodeRecord(record(2, 2)) + 'garbage\n' + encodeRecord(record(3, 3)));
      writeFileSync(join(dir, segmentName(3)), '');
      await expect(compactor.compact(dir, 2)).rejects.toThrow(/compaction failed: .*damaged at byte \d+ \(line 2\)/);
      writeFileSync(join(dir, segmentName(2)), encodeRecord(record(2, 2)) + encodeRecord(record(3, 3)));
      await expect(compactor.compact(dir, 2)).resolves.toEqual({ seq: 3, docs: 1, pausedMs: 0 });
      const recovered = await recover(dir);
      expect(recovered.docs.get('wf1')).toEqual({ v: 3, doc: { n: 3 } });
      expect(readdirSync(dir).filter((f) => f.endsWith('.journal'))).toEqual([segmentName(3)]);
    } finally {
      await compactor.close();
    }
  });
});

describe('paced compaction', () => {
  /** A segment of `count` small changes after record 1 (the document), from seq `first`. */
  const segment = (dir: string, n: number, first: number, count: number) =>
    writeFileSync(join(dir, segmentName(n)), encodeRecords(Array.from({ length: count }, (_, i) => record(first + i, first + i))));

  it('sleeps between slices of replay in the background, and not once told to hurry or asked for directly', async () => {
    const dir = tempDir();
    const compactor = new CompactionWorker();
    try {
      segment(dir, 1, 1, 1);
      segment(dir, 2, 2, 30_000);
      segment(dir, 3, 0, 0);
      const paced = await compactor.compact(dir, 2, true);
      expect(paced.seq).toBe(30_001);
      expect(paced.pausedMs).toBeGreaterThan(0);
      segment(dir, 3, 30_002, 30_000);
      segment(dir, 4, 0, 0);
      const hurrying = compactor.compact(dir, 3, true);
      compactor.hurry();
      const hurried = await hurrying;
      expect(hurried).toMatchObject({ seq: 60_001, docs: 1 });
      // The worker may start a slice before the flag is set (another thread): it then sleeps only
      // until hurry() wakes it, never through the rest of the job as the paced one did.
      expect(hurried.pausedMs).toBeLessThan(paced.pausedMs);
      expect((await recover(dir)).docs.get('wf1')).toEqual({ v: 60_001, doc: { n: 60_001 } });
    } finally {
      await compactor.close();
    }
  });
});
