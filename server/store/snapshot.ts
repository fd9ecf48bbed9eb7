import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { HubError } from '../../shared/errors.ts';
import type { DocKey, StoredDoc } from '../domain/machinery/state.ts';
import { dropSegments } from './journal.ts';
import { sameSnapshot, writeManifest, type SnapshotRef } from './manifest.ts';
import type { ItemSpans } from './item-spans.ts';
import { syncedWrite } from './synced-write.ts';

/** What a snapshot holds: every document as of the end of journal segment `segment`. */
export interface SnapshotContents {
  /** Every journal segment up to and including this one is contained in the snapshot. */
  segment: number;
  /** The sequence number of the last record contained. */
  seq: number;
  /** Documents in creation order (an array, since object keys that look like numbers reorder). */
  docs: Array<[DocKey, StoredDoc]>;
}

/** A snapshot read from disk, with the reference that names it. Formats 1 (before checksums) and 2 (one line) are still read. */
export interface Snapshot extends SnapshotContents {
  format: 1 | 2 | 3;
  ref: SnapshotRef;
  /** Where each document lies in the file (format 3, when asked for). */
  index?: SnapshotIndex | undefined;
}

/** Where one document's entry lies in a snapshot file (bytes [start, end)), and its version there. */
export interface DocSpan {
  v: number;
  start: number;
  end: number;
  /** Where the document's JSON starts. */
  json: number;
  /** Where its items lie, when the hub wrote the file (not when it read it at start-up). */
  items?: ItemSpans | undefined;
}

/** The entries of a snapshot file by document: what a later snapshot may copy instead of serialising again. */
export type SnapshotIndex = Map<DocKey, DocSpan>;

export const SNAPSHOT_FILE = 'snapshot.json';

/**
 * The file is one JSON object whose first member is the SHA-256 of everything after that member:
 * `{"sha256":"<64 hex>",` then `"format":3,"segment":…,"seq":…,"docs":[…]}`. The checksum is
 * checked on the text as read, without serialising anything again, and the file stays plain JSON.
 * Format 3 puts each document's entry, `["<key>",{"v":…,"doc":…}]`, on a line of its own (format 2
 * is the same on one line), so that a later snapshot can copy the bytes of a document that has not
 * changed instead of serialising it again.
 */
export const PREFIX = '{"sha256":"';
export const BODY_START = PREFIX.length + 64 + 2;
const HEADER = /^\{"sha256":"([0-9a-f]{64})","format":[23],"segment":(\d+),"seq":(\d+),/;

/** The body up to the first entry's separator. */
export const bodyHead = (segment: number, seq: number) => `"format":3,"segment":${segment},"seq":${seq},"docs":[`;
/** What goes before entry `i`: each starts a line. */
export const entrySeparator = (i: number) => (i === 0 ? '\n' : ',\n');
/** An entry up to its document's JSON, which ENTRY_END follows. */
export const entryHead = (key: DocKey, v: number) => `[${JSON.stringify(key)},{"v":${v},"doc":`;
export const ENTRY_END = '}]';
export const BODY_END = '\n]}';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Parses and checks a snapshot's text; `file` names where it came from in errors. */
export function parseSnapshot(text: string, file: string): Snapshot {
  let parsed: Snapshot & { sha256?: string };
  try {
    parsed = JSON.parse(text) as Snapshot & { sha256?: string };
  } catch (error) {
    throw new HubError('INTERNAL', `snapshot ${file} is unreadable (${(error as Error).message}); refusing to start with an empty state`);
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.docs) || !Number.isSafeInteger(parsed.segment) || !Number.isSafeInteger(parsed.seq)) {
    throw new HubError('INTERNAL', `snapshot ${file} has an unknown format`);
  }
  if (parsed.format === 2 || parsed.format === 3) {
    const sha = text.startsWith(PREFIX) ? text.slice(PREFIX.length, PREFIX.length + 64) : '';
    if (sha !== parsed.sha256 || sha256(text.slice(BODY_START)) !== sha) {
      throw new HubError('INTERNAL', `snapshot ${file} does not match its checksum: it was edited or damaged; refusing to start with an altered state`);
    }
    return { format: parsed.format, segment: parsed.segment, seq: parsed.seq, docs: parsed.docs, ref: { segment: parsed.segment, seq: parsed.seq, sha256: sha } };
  }
  if (parsed.format !== 1) throw new HubError('INTERNAL', `snapshot ${file} has an unknown format`);
  return { format: 1, segment: parsed.segment, seq: parsed.seq, docs: parsed.docs, ref: { segment: parsed.segment, seq: parsed.seq, sha256: sha256(text) } };
}

/**
 * Where each entry of a format-3 snapshot's text lies (in bytes), from its lines; undefined when
 * its lines are not its documents' entries, one each.
 */
function entriesOf(text: string, docs: Array<[DocKey, StoredDoc]>): SnapshotIndex | undefined {
  const lines = text.split('\n');
  if (lines.length !== docs.length + 2) return undefined;
  const index: SnapshotIndex = new Map();
  let at = Buffer.byteLength(lines[0]!) + 1;
  for (const [i, [key, stored]] of docs.entries()) {
    const line = lines[i + 1]!;
    if (!line.startsWith(entryHead(key, stored.v))) return undefined;
    const bytes = Buffer.byteLength(line);
    // Every entry but the last ends its line with the comma before the next.
    index.set(key, { v: stored.v, start: at, end: at + bytes - (i < docs.length - 1 ? 1 : 0), json: at + Buffer.byteLength(entryHead(key, stored.v)) });
    at += bytes + 1;
  }
  return index;
}

/** Reads the snapshot (lowdb), or undefined when there is none; `withIndex`: with where each document lies in the file. */
export async function readSnapshot(dir: string, withIndex = false): Promise<Snapshot | undefined> {
  const file = join(dir, SNAPSHOT_FILE);
  const parse = (text: string) => {
    const snapshot = parseSnapshot(text, file);
    return withIndex && snapshot.format === 3 ? { ...snapshot, index: entriesOf(text, snapshot.docs) } : snapshot;
  };
  const db = new Low<Snapshot | null>(new DataFile<Snapshot | null>(file, { parse, stringify: () => '' }), null);
  await db.read();
  return db.data ?? undefined;
}

/** The reference of the snapshot on disk, from its first bytes when it has a checksum; null when there is none. */
export async function snapshotOnDisk(dir: string): Promise<SnapshotRef | null> {
  const file = join(dir, SNAPSHOT_FILE);
  if (!existsSync(file)) return null;
  const head = Buffer.alloc(256);
  const fd = openSync(file, 'r');
  try {
    const match = HEADER.exec(head.toString('utf8', 0, readSync(fd, head, 0, head.length, 0)));
    if (match) return { sha256: match[1]!, segment: Number(match[2]), seq: Number(match[3]) };
  } finally {
    closeSync(fd);
  }
  return (await readSnapshot(dir))?.ref ?? null;
}

/** The text of a snapshot holding `contents`, and the reference that names it. */
export function snapshotText(contents: SnapshotContents): { text: string; ref: SnapshotRef } {
  const parts = [bodyHead(contents.segment, contents.seq)];
  contents.docs.forEach(([key, stored], i) => parts.push(entrySeparator(i), entryHead(key, stored.v), JSON.stringify(stored.doc), ENTRY_END));
  parts.push(BODY_END);
  const body = parts.join('');
  const sha = sha256(body);
  return { text: `${PREFIX}${sha}",${body}`, ref: { segment: contents.segment, seq: contents.seq, sha256: sha } };
}

/**
 * Replaces the snapshot and deletes the journal segments it contains. The manifest names the new
 * snapshot beside the one on disk first, so a crash at any step leaves a directory it describes.
 */
export async function replaceSnapshot(dir: string, snapshot: { text: string; ref: SnapshotRef }): Promise<void> {
  await installSnapshot(dir, snapshot.ref, () => syncedWrite(dir, SNAPSHOT_FILE, snapshot.text));
}

/** replaceSnapshot's steps around `put`, which puts the snapshot named `ref` in place, atomically and flushed. */
export async function installSnapshot(dir: string, ref: SnapshotRef, put: () => Promise<void>): Promise<void> {
  const onDisk = await snapshotOnDisk(dir);
  const snapshots = sameSnapshot(onDisk, ref) ? [ref] : [ref, onDisk];
  await writeManifest(dir, { format: 1, snapshots, segment: ref.segment + 1 });
  await put();
  dropSegments(dir, ref.segment);
}
