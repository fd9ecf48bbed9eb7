import { crc32 } from 'node:zlib';
import { applyPatch, type PatchOp } from '../../shared/patch.ts';
import type { DocKey, StoredDoc } from '../domain/state.ts';

/** One document's part of a committed change. */
export interface DocChange {
  doc: DocKey;
  /** The document's version after the change. */
  v: number;
  ops: PatchOp[];
}

/** One committed command: what the journal holds, one line each. */
export interface JournalRecord {
  seq: number;
  at: number;
  changes: DocChange[];
}

/** A journal line: the CRC-32 of the JSON (8 hex digits), a space, the JSON, a newline. */
export function encodeRecord(record: JournalRecord): string {
  const json = JSON.stringify(record);
  return crc32(json).toString(16).padStart(8, '0') + ' ' + json + '\n';
}

/** Parses one journal line (without its newline), or returns null when it is torn or corrupt. */
export function decodeRecord(line: string): JournalRecord | null {
  if (line.length < 10 || line[8] !== ' ') return null;
  const json = line.slice(9);
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return null;
  try {
    return JSON.parse(json) as JournalRecord;
  } catch {
    return null;
  }
}

/** Applies a committed record to stored documents (start-up replay and compaction share this). */
export function replayRecord(docs: Map<DocKey, StoredDoc>, record: JournalRecord): void {
  for (const change of record.changes) {
    const stored = docs.get(change.doc);
    const next = applyPatch(stored?.doc, change.ops);
    if (next === undefined) docs.delete(change.doc);
    else docs.set(change.doc, { v: change.v, doc: next });
  }
}
