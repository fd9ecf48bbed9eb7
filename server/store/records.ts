import { crc32 } from 'node:zlib';
import { applyPatch, compactOps, type PatchOp } from '../../shared/patch.ts';
import type { DocKey, StoredDoc } from '../domain/machinery/state.ts';

/** One document's part of a committed change. */
export interface DocChange {
  doc: DocKey;
  /** The document's version after the change. */
  v: number;
  ops: PatchOp[];
  /** Known to hold nothing compactOps could shorten (Transaction.mayCompact): written as they are. */
  plain?: true;
}

/** One committed command: what the journal holds, one line each. */
export interface JournalRecord {
  seq: number;
  at: number;
  changes: DocChange[];
}

/** A record read back from its line, with its place in the batch it was written in (absent: the first, or alone). */
export interface ReadRecord extends JournalRecord {
  position?: number;
}

/**
 * How a record is laid out on its journal line: one flat JSON array,
 * `[seq, at, doc, v, ops, doc, v, ops, …, position]`, with each document's ops flat as well:
 * `"=", path, value` (replace), `"+", path, value` (add), `"-", path` (remove). The keys an
 * object per record and per op would repeat were a third of a progress update's line, and every
 * byte is written once, read back by every snapshot and by every restart. `position`, the
 * record's place in its batch (one write, one fsync), is left out when 0: recovery tells by it
 * the unacknowledged last batch a power loss damaged from damage to acknowledged records.
 */
type Line = Array<string | number | unknown[]>;

const CODE = { add: '+', replace: '=', remove: '-' } as const;

/**
 * A document's ops in one record are compacted, with folding, from this many on: a bulk command
 * (1,000 work orders created and queued) wrote eight ops per order, of which seven set fields of
 * the order it had just added; folded, its line is about half as long to write, to read back at
 * every restart and to replay at every snapshot. Ordinary commands have a few ops and skip this.
 */
const COMPACT_FROM_OPS = 32;

function toLine(record: JournalRecord, position: number): Line {
  const line: Line = [record.seq, record.at];
  for (const change of record.changes) {
    const ops: unknown[] = [];
    for (const op of change.ops.length >= COMPACT_FROM_OPS && change.plain !== true ? compactOps(change.ops, { fold: true }) : change.ops) {
      if (op.op === 'remove') ops.push('-', op.path);
      else ops.push(CODE[op.op], op.path, op.value);
    }
    line.push(change.doc, change.v, ops);
  }
  if (position > 0) line.push(position);
  return line;
}

/** The record a line holds, or null when its shape is not one. */
function fromLine(line: unknown): ReadRecord | null {
  if (!Array.isArray(line) || line.length < 2) return null;
  const rest = (line.length - 2) % 3;
  const position: unknown = rest === 1 ? line[line.length - 1] : 0;
  if (rest === 2 || !Number.isSafeInteger(position) || (rest === 1 && (position as number) < 1)) return null;
  const changes: DocChange[] = [];
  for (let i = 2; i < line.length - rest; i += 3) {
    const flat = line[i + 2] as unknown[];
    if (!Array.isArray(flat)) return null;
    const ops: PatchOp[] = [];
    for (let k = 0; k < flat.length; ) {
      const code = flat[k];
      const path = flat[k + 1];
      if (typeof path !== 'string') return null;
      if (code === '-') ops.push({ op: 'remove', path });
      else if (code === '=') ops.push({ op: 'replace', path, value: flat[k + 2] });
      else if (code === '+') ops.push({ op: 'add', path, value: flat[k + 2] });
      else return null;
      k += code === '-' ? 2 : 3;
    }
    changes.push({ doc: line[i] as DocKey, v: line[i + 1] as number, ops });
  }
  const record: ReadRecord = { seq: line[0] as number, at: line[1] as number, changes };
  if (rest === 1) record.position = position as number;
  return record;
}

/** A journal line: the CRC-32 of the JSON (8 hex digits), a space, the JSON, a newline; `position` in its batch, 0 when written alone. */
export function encodeRecord(record: JournalRecord, position = 0): string {
  const json = JSON.stringify(toLine(record, position));
  return crc32(json).toString(16).padStart(8, '0') + ' ' + json + '\n';
}

const SPACE = 0x20;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const NEWLINE = 0x0a;

/**
 * The journal lines of `records` (as encodeRecord writes them), straight into one buffer: each
 * JSON is encoded to UTF-8 once and checksummed as bytes, with no intermediate strings. This is
 * the batch the hub writes once per tick; `marksBatch` false leaves out each record's place in it.
 */
export function encodeRecords(records: readonly JournalRecord[], marksBatch = false): Buffer {
  const jsons = records.map((record, position) => JSON.stringify(toLine(record, marksBatch ? position : 0)));
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
export function decodeRecord(line: string): ReadRecord | null {
  return decodeLine(Buffer.from(line, 'utf8'), 0, Buffer.byteLength(line, 'utf8'));
}

/**
 * decodeRecord for the line at bytes [start, end) of a segment: the checksum is taken over the
 * bytes as they are on disk, and only the JSON is turned into a string (start-up reads every
 * line of the journal through here). Lines of the first format (one object per record, written
 * by hubs before the flat layout) are read as they are.
 */
export function decodeLine(buffer: Buffer, start: number, end: number): ReadRecord | null {
  if (end - start < 10 || buffer[start + 8] !== SPACE) return null;
  if (crc32(buffer.subarray(start + 9, end)).toString(16).padStart(8, '0') !== buffer.toString('latin1', start, start + 8)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(buffer.toString('utf8', start + 9, end));
  } catch {
    return null;
  }
  if (Array.isArray(parsed)) return fromLine(parsed);
  return typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as JournalRecord).changes) ? (parsed as JournalRecord) : null;
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
