import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { DataFile, TextFile } from 'lowdb/node';
import { HubError } from '../../shared/errors.ts';
import type { DocKey, StoredDoc } from '../domain/state.ts';

/** The snapshot file: every document as of the end of journal segment `segment`. */
export interface SnapshotData {
  format: 1;
  /** Every journal segment up to and including this one is contained in the snapshot. */
  segment: number;
  /** The sequence number of the last record contained. */
  seq: number;
  /** Documents in creation order (an array, since object keys that look like numbers reorder). */
  docs: Array<[DocKey, StoredDoc]>;
}

export const SNAPSHOT_FILE = 'snapshot.json';

function database(dir: string): Low<SnapshotData> {
  const file = new DataFile<SnapshotData>(join(dir, SNAPSHOT_FILE), {
    parse: (text) => {
      try {
        return JSON.parse(text) as SnapshotData;
      } catch (error) {
        throw new HubError('INTERNAL', `snapshot ${join(dir, SNAPSHOT_FILE)} is unreadable (${(error as Error).message}); refusing to start with an empty state`);
      }
    },
    stringify: snapshotText,
  });
  return new Low(file, { format: 1, segment: 0, seq: 0, docs: [] });
}

/** Reads the snapshot (lowdb), or an empty one when there is none. */
export async function readSnapshot(dir: string): Promise<SnapshotData> {
  const db = database(dir);
  await db.read();
  if (db.data.format !== 1 || !Array.isArray(db.data.docs)) {
    throw new HubError('INTERNAL', `snapshot ${join(dir, SNAPSHOT_FILE)} has an unknown format`);
  }
  return db.data;
}

/** The text of the snapshot file holding `data`. */
export function snapshotText(data: SnapshotData): string {
  return JSON.stringify(data);
}

/**
 * Writes the snapshot (or its text, from `snapshotText`) atomically: lowdb writes a temporary
 * file and renames it. Then flushes the file and its directory to disk: the journal segments it
 * replaces are deleted right after, so the snapshot must not live only in the page cache.
 */
export async function writeSnapshot(dir: string, data: SnapshotData | string): Promise<void> {
  await new TextFile(join(dir, SNAPSHOT_FILE)).write(typeof data === 'string' ? data : snapshotText(data));
  for (const path of [join(dir, SNAPSHOT_FILE), dir]) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
