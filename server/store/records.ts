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
  return decodeLine(Buffer.from(line, 'utf8'), 0, Buffer.byteLength(line, 'utf8'));
}

const SPACE = 0x20;

/**
 * decodeRecord for the line at bytes [start, end) of a segment: the checksum is taken over the
 * bytes as they are on disk, and only the JSON is turned into a string (start-up reads every
 * line of the journal through here).
 */
export function decodeLine(buffer: Buffer, start: number, end: number): JournalRecord | null {
  if (end - start < 10 || buffer[start + 8] !== SPACE) return null;
  if (crc32(buffer.subarray(start + 9, end)).toString(16).padStart(8, '0') !== buffer.toString('latin1', start, start + 8)) return null;
  try {
    return JSON.parse(buffer.toString('utf8', start + 9, end)) as JournalRecord;
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
