import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { HubError } from '../../shared/errors.ts';
import type { DocKey, StoredDoc } from '../domain/machinery/state.ts';
import { dropSegments } from './journal.ts';
import { sameSnapshot, writeManifest, type SnapshotRef } from './manifest.ts';
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

/** A snapshot read from disk, with the reference that names it. Format 1 (before checksums) is still read. */
export interface Snapshot extends SnapshotContents {
  format: 1 | 2;
  ref: SnapshotRef;
}

export const SNAPSHOT_FILE = 'snapshot.json';

/**
 * The file is one JSON object whose first member is the SHA-256 of everything after that member:
 * `{"sha256":"<64 hex>",` then `"format":2,"segment":…,"seq":…,"docs":[…]}`. The checksum is
 * checked on the text as read, without serialising anything again, and the file stays plain JSON.
 */
const PREFIX = '{"sha256":"';
const BODY_START = PREFIX.length + 64 + 2;
const HEADER = /^\{"sha256":"([0-9a-f]{64})","format":2,"segment":(\d+),"seq":(\d+),/;

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
  if (parsed.format === 2) {
    const sha = text.startsWith(PREFIX) ? text.slice(PREFIX.length, PREFIX.length + 64) : '';
    if (sha !== parsed.sha256 || sha256(text.slice(BODY_START)) !== sha) {
      throw new HubError('INTERNAL', `snapshot ${file} does not match its checksum: it was edited or damaged; refusing to start with an altered state`);
    }
    return { format: 2, segment: parsed.segment, seq: parsed.seq, docs: parsed.docs, ref: { segment: parsed.segment, seq: parsed.seq, sha256: sha } };
  }
  if (parsed.format !== 1) throw new HubError('INTERNAL', `snapshot ${file} has an unknown format`);
  return { format: 1, segment: parsed.segment, seq: parsed.seq, docs: parsed.docs, ref: { segment: parsed.segment, seq: parsed.seq, sha256: sha256(text) } };
}

/** Reads the snapshot (lowdb), or undefined when there is none. */
export async function readSnapshot(dir: string): Promise<Snapshot | undefined> {
  const file = join(dir, SNAPSHOT_FILE);
  const db = new Low<Snapshot | null>(new DataFile<Snapshot | null>(file, { parse: (text) => parseSnapshot(text, file), stringify: () => '' }), null);
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
  const body = JSON.stringify({ format: 2, segment: contents.segment, seq: contents.seq, docs: contents.docs }).slice(1);
  const sha = sha256(body);
  return { text: `${PREFIX}${sha}",${body}`, ref: { segment: contents.segment, seq: contents.seq, sha256: sha } };
}

/**
 * Replaces the snapshot and deletes the journal segments it contains. The manifest names the new
 * snapshot beside the one on disk first, so a crash at any step leaves a directory it describes.
 */
export async function replaceSnapshot(dir: string, snapshot: { text: string; ref: SnapshotRef }): Promise<void> {
  const onDisk = await snapshotOnDisk(dir);
  const snapshots = sameSnapshot(onDisk, snapshot.ref) ? [snapshot.ref] : [snapshot.ref, onDisk];
  await writeManifest(dir, { format: 1, snapshots, segment: snapshot.ref.segment + 1 });
  await syncedWrite(dir, SNAPSHOT_FILE, snapshot.text);
  dropSegments(dir, snapshot.ref.segment);
}
