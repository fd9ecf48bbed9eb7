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

const SPACE = 0x20;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const NEWLINE = 0x0a;

/**
 * The journal lines of `records` (as encodeRecord writes them), straight into one buffer: each
 * JSON is encoded to UTF-8 once and checksummed as bytes, with no intermediate strings. This is
 * the batch the hub writes once per tick.
 */
export function encodeRecords(records: readonly JournalRecord[]): Buffer {
  const jsons = records.map((record) => JSON.stringify(record));
  let size = 0;
  for (const json of jsons) size += Buffer.byteLength(json, 'utf8') + 10;
  const buffer = Buffer.allocUnsafe(size);
  let at = 0;
  for (const json of jsons) {
    const start = at + 9;
    const end = start + buffer.write(json, start, 'utf8');
    let crc = crc32(buffer.subarray(start, end));
    for (let i = 7; i >= 0; i--, crc >>>= 4) buffer[at + i] = HEX[crc & 0xf]!;
    buffer[at + 8] = SPACE;
    buffer[end] = NEWLINE;
    at = end + 1;
  }
  return buffer;
}

/** Parses one journal line (without its newline), or returns null when it is torn or corrupt. */
export function decodeRecord(line: string): JournalRecord | null {
  return decodeLine(Buffer.from(line, 'utf8'), 0, Buffer.byteLength(line, 'utf8'));
}

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
