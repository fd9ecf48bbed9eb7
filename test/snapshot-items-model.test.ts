import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { docKeys, docRoot, emptyState, versionOf, type StoredDoc } from '../server/domain/machinery/state.ts';
import { Transaction } from '../server/domain/machinery/transaction.ts';
import { pinnedSnapshotJson } from '../server/pinned-json.ts';
import { replaceSnapshot, SNAPSHOT_FILE, snapshotText, type SnapshotIndex } from '../server/store/snapshot.ts';
import { writeSnapshot, type SnapshotPart } from '../server/store/snapshot-writer.ts';
import { tempDir } from './helpers/hub.ts';
import { random } from './helpers/random.ts';

const DOCS = ['w1', 'w2', 'w3'];
const FIELDS = ['data', 'counts', 'other'];
/** Keys that are array indexes (listed first), that need escaping, or that are not ASCII. */
const KEYS = ['a', 'b', 'c', '0', '1', '7', '10', 'é', '日本', 'a"b', 'z', 'x\u2028y', '😀'];
const TEXTS = ['', 'x', 'é', '日本語', '😀', 'a\\b"c', '\u2028', 'long '.repeat(20)];

/**
 * Snapshots as the hub takes them (StateWriter.pinForSnapshot and the embedded store around the
 * real writeSnapshot), under random transactions made before and while each is written, with
 * rollbacks (which abort pins), snapshots skipped or failed, and compactions that replace the file.
 * Every file written must hold the documents as pinned, and be exactly what serialising its own
 * documents gives: valid JSON, no item twice or in another's place.
 */
async function snapshotsUnderRandomWrites(seed: number, rounds: number): Promise<void> {
  const next = random(seed);
  const pick = <T,>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
  const dir = tempDir();
  const state = emptyState();
  state.changed.track();
  const changedDocs = new Set<string>();
  let index: SnapshotIndex | undefined;
  let segment = 1;

  const value = () => ({ v: pick(TEXTS), n: Math.floor(next() * 1000), arr: [pick(TEXTS)] });
  const items = () => Object.fromEntries(KEYS.filter(() => next() < 0.4).map((key) => [key, value()]));
  const newDoc = () => ({ status: pick(TEXTS), data: items(), counts: items(), other: items(), list: [1, 2] });

  /** One command of a few writes of any kind; one in ten is rolled back, as a failed journal write is. */
  const command = () => {
    const tx = new Transaction(state);
    for (let n = 1 + Math.floor(next() * 4); n > 0; n--) {
      const doc = pick(DOCS);
      const root = docRoot(state, doc);
      if (!root) {
        tx.putDoc(doc, newDoc());
        continue;
      }
      const field = pick(FIELDS);
      const held = root[field] as Record<string, Record<string, unknown>> | undefined;
      const r = next();
      if (r < 0.03) tx.dropDoc(doc);
      else if (r < 0.06) tx.putDoc(doc, newDoc());
      else if (r < 0.1 || !held) tx.set(doc, [field], items());
      else if (r < 0.12) tx.remove(doc, [field]);
      else if (r < 0.15) tx.set(doc, ['status'], pick(TEXTS));
      else {
        const key = pick(KEYS);
        const q = next();
        if (!held[key]) tx.set(doc, [field, key], value());
        else if (q < 0.3) tx.set(doc, [field, key, 'v'], pick(TEXTS));
        else if (q < 0.5) tx.remove(doc, [field, key]);
        else if (q < 0.7) tx.append(doc, [field, key, 'arr'], pick(TEXTS));
        else if (q < 0.85) tx.assign(doc, [field], { [key]: value() });
        else tx.assign(doc, [field, key], { n: Math.floor(next() * 1000), v: pick(TEXTS) });
      }
    }
    if (next() < 0.1) {
      tx.rollback();
      // As StateWriter.rollBack: readers holding a version start again.
      state.pins.abortAll('rolled back');
    } else for (const doc of tx.changes.keys()) changedDocs.add(doc);
  };

  const snapshot = async () => {
    const changes = state.changed.take();
    const pinned: Array<[string, StoredDoc]> = docKeys(state).map((key) => [key, { v: versionOf(state, key), doc: JSON.parse(JSON.stringify(docRoot(state, key))) }]);
    const serialised: string[] = [];
    const parts: SnapshotPart[] = docKeys(state).map((key) => {
      const v = versionOf(state, key);
      if (!changedDocs.has(key) && index?.get(key)?.v === v) return { key, v, json: undefined };
      serialised.push(key);
      const span = changes.unknown ? undefined : index?.get(key);
      const json = pinnedSnapshotJson(state, key, span?.items && { json: span.json, items: span.items, changes: changes.docs.get(key) });
      // Commands go on while the snapshot is written.
      const chunks = (async function* () {
        for await (const chunk of json.chunks) {
          if (next() < 0.5) command();
          yield chunk;
        }
      })();
      return { key, v, json: { ...json, chunks } };
    });
    changedDocs.clear();
    const failed = () =>
      serialised.forEach((key) => {
        changedDocs.add(key);
        state.changed.markWhole(key);
      });
    if (next() < 0.1) {
      // The store was busy: it lets the documents go.
      for (const part of parts) part.json?.release();
      failed();
      return;
    }
    const seq = segment * 1000;
    try {
      index = (await writeSnapshot(dir, segment++, seq, parts, index)).index;
    } catch (error) {
      expect((error as Error).message).toMatch(/rolled back/);
      failed();
      index = undefined;
      return;
    }
    const text = readFileSync(join(dir, SNAPSHOT_FILE), 'utf8');
    const written = (JSON.parse(text) as { docs: Array<[string, StoredDoc]> }).docs;
    // Key order aside (a rolled-back delete puts a key back last), the documents as pinned.
    expect(new Map(written), `seed ${seed}, snapshot ${segment - 1}`).toEqual(new Map(pinned));
    expect(text, `seed ${seed}, snapshot ${segment - 1}`).toBe(snapshotText({ segment: segment - 1, seq, docs: written }).text);
  };

  for (let round = 0; round < rounds; round++) {
    for (let n = Math.floor(next() * 6); n > 0; n--) command();
    if (next() < 0.05) {
      // A snapshot from memory or a compaction replaces the file: where its items lie is not known.
      const docs = docKeys(state).map((key): [string, StoredDoc] => [key, { v: versionOf(state, key), doc: docRoot(state, key) }]);
      await replaceSnapshot(dir, snapshotText({ segment: segment++, seq: 0, docs }));
      index = undefined;
    } else await snapshot();
  }
}

describe('snapshots copying unchanged items', () => {
  it('hold exactly the pinned documents under random writes before and during them, rollbacks, failures and compactions (30 seeds)', async () => {
    for (let seed = 1; seed <= 30; seed++) await snapshotsUnderRandomWrites(seed, 60);
  });

  it('fails a snapshot whose pin was aborted while a copied range was handed out, however soon its reading goes on', async () => {
    const dir = tempDir();
    const state = emptyState();
    state.changed.track();
    const data = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, { v: `v${i}` }]));
    new Transaction(state).putDoc('w', { data });
    state.changed.take();
    const first = await writeSnapshot(dir, 1, 1, [{ key: 'w', v: versionOf(state, 'w'), json: pinnedSnapshotJson(state, 'w', undefined) }], undefined);
    // k39 and k70 change before the next snapshot is pinned: they are serialised, the others copied.
    // k39's text hands out the range before it while k70 is still to be read.
    new Transaction(state).set('w', ['data', 'k39', 'v'], 'pinned');
    new Transaction(state).set('w', ['data', 'k70', 'v'], 'pinned');
    const span = first.index.get('w')!;
    const json = pinnedSnapshotJson(state, 'w', { json: span.json, items: span.items!, changes: state.changed.take().docs.get('w') });
    // Each range is copied within the slice's time, so reading goes on at once after it.
    vi.spyOn(performance, 'now').mockReturnValue(0);
    onTestFinished(() => {
      vi.restoreAllMocks();
    });
    let rolledBack = false;
    const chunks = (async function* () {
      for await (const chunk of json.chunks) {
        if (!Buffer.isBuffer(chunk) && !rolledBack) {
          rolledBack = true;
          // A journal write fails: the writer rolls back and aborts every pin; the next command writes k70, which the pin no longer keeps.
          state.pins.abortAll('the hub rolled back changes that could not be stored');
          new Transaction(state).set('w', ['data', 'k70', 'v'], 'after the pin');
        }
        yield chunk;
      }
    })();
    await expect(writeSnapshot(dir, 2, 2, [{ key: 'w', v: span.v + 1, json: { ...json, chunks } }], first.index)).rejects.toThrow(/rolled back/);
  });
});
