import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, realpath, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ARCHIVE_DIR, ARCHIVE_INDEX_FILE } from './archive-files.ts';
import { listSegments, segmentName } from './journal.ts';
import { MANIFEST_FILE, sameSnapshot, writeManifest, type SnapshotRef } from './manifest.ts';
import { recover } from './recovery.ts';
import { SNAPSHOT_FILE, snapshotOnDisk } from './snapshot.ts';
import { syncDirectory } from './synced-write.ts';
import { dropStaged, stageState, type StagedState } from './backup-staging.ts';
import { makeDirectory } from '../make-directory.ts';
import { realLocation } from '../real-location.ts';

/** What a backup holds. */
export interface BackupResult {
  /** The last journal record the copy holds (every change acknowledged before the backup began is at or before it). */
  seq: number;
  /** Journal segments copied after the snapshot. */
  segments: number;
  /** Archived workflows copied. */
  archived: number;
  /** Archived workflows the source's index names but whose files it has lost: the copy names them too, and reading them fails there as on the source. */
  lostArchived: string[];
  /** How many times the state was copied: 1 from hard links; copying the live files, a snapshot replacing the journal meanwhile makes it start again. */
  attempts: number;
  /** What replaying the copy dropped from it, as a start on the source would (a power loss's damaged last batch, a torn last record). */
  warnings: string[];
}

/** How a backup copies. */
export interface BackupOptions {
  /** false: copy the live files (with retries) without trying hard links first, as where the data directory refuses them. */
  links?: boolean;
}

/** How often the state is copied again before giving up: each retry means a whole snapshot was written meanwhile. */
const ATTEMPTS = 20;
const TOKENS_FILE = 'tokens.json';
const REPORTS_DIR = 'workflows';

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * Copies the embedded store's data directory `source`, which a hub may be running on, to `dest`
 * (a directory that does not exist or is empty) so that a hub started on `dest` holds every change
 * acknowledged before the backup began. The state first (snapshot, then the journal segments after
 * it, from hard links taken at one moment, else copied again when a snapshot replaced them
 * meanwhile), then the archive as its index names it: a workflow the copied journal evicted was
 * archived before its eviction was written. The lock
 * and the URL of the running hub are not copied; the tokens and report files are. The copy is
 * checked by replaying it, as a start does.
 */
export async function backupDataDir(source: string, dest: string, options: BackupOptions = {}): Promise<BackupResult> {
  const created = await checkDestination(source, dest);
  if (!existsSync(join(source, MANIFEST_FILE)) && !existsSync(join(source, SNAPSHOT_FILE)) && listSegments(source).length === 0) {
    if (created) await rmdir(dest);
    throw new Error(`${source} holds no hub data (no ${MANIFEST_FILE}, snapshot or journal); a cluster node's state is in PostgreSQL: back that up with pg_dump`);
  }
  try {
    const staged = options.links === false ? undefined : await stageState(source);
    const { ref, last, attempts } = staged ? await copyStaged(staged, dest) : await copyState(source, dest);
    // Named from what was copied: the live manifest may already name a segment the copy stops before.
    await writeManifest(dest, { format: 1, snapshots: [ref], segment: last ?? ref?.segment ?? 0 });
    let seq: number;
    let warnings: string[];
    try {
      // As a start does: the unacknowledged damage a start on the source would drop is cut from the copy, not refused.
      ({ seq, warnings } = await recover(dest));
    } catch (error) {
      throw new Error(`the copy would not start (${(error as Error).message}); start a hub on ${source} to see whether the data directory itself is damaged`);
    }
    const { archived, lost: lostArchived } = await copyArchive(join(source, ARCHIVE_DIR), join(dest, ARCHIVE_DIR));
    await copyIfPresent(join(source, TOKENS_FILE), join(dest, TOKENS_FILE));
    await copyTree(join(source, REPORTS_DIR), join(dest, REPORTS_DIR));
    await syncDirectory(dest);
    return { seq, segments: last === undefined ? 0 : listSegments(dest).length, archived, lostArchived, attempts, warnings };
  } catch (error) {
    // Nothing half-made is left to pass for a backup: the directory was empty before.
    await clear(dest, created);
    throw error;
  }
}

/** Refuses a destination that is the source or holds anything; makes it when missing. Returns whether it was made. */
async function checkDestination(source: string, dest: string): Promise<boolean> {
  if (!existsSync(source)) throw new Error(`data directory ${source} does not exist`);
  // Where they lead: a destination reached through a symbolic link into the source is inside it too.
  const [from, to] = [await realpath(source), await realLocation(resolve(dest))];
  if (from === to) throw new Error(`the backup must go to another directory than ${source}`);
  // Inside it, the copy of the reports' folder would find the copy being made in it, and copy that again without end.
  const within = relative(from, to);
  if (!within.startsWith('..') && !isAbsolute(within)) throw new Error(`the backup must go outside ${source}, not into ${dest} inside it`);
  if (!existsSync(dest)) {
    makeDirectory(dest, 0o700);
    return true;
  }
  if (!(await stat(dest)).isDirectory()) throw new Error(`${dest} exists and is not a directory; give a new or empty directory`);
  if (readdirSync(dest).length > 0) throw new Error(`${dest} is not empty; give a new or empty directory, so that no backup is mixed with other files`);
  return false;
}

/** Copies the staged snapshot and segments (see stageState), then removes the staging folder. */
async function copyStaged(staged: StagedState, dest: string): Promise<{ ref: SnapshotRef | null; last: number | undefined; attempts: number }> {
  try {
    const copy = async (name: string, growing = false) => {
      const copied = growing ? await copyWholeLines(join(staged.dir, name), join(dest, name)) : await copyIfPresent(join(staged.dir, name), join(dest, name));
      if (!copied) throw new Error(`${join(staged.dir, name)} was removed while it was copied; try again`);
    };
    if (staged.ref) await copy(SNAPSHOT_FILE);
    // The hub may still append to the newest segment, through the link too: its last record may be cut short.
    for (const [i, n] of staged.segments.entries()) await copy(segmentName(n), i === staged.segments.length - 1);
    return { ref: staged.ref, last: staged.segments.at(-1), attempts: 1 };
  } finally {
    await dropStaged(staged.dir);
  }
}

/**
 * Copies the live snapshot and every journal segment after it. A snapshot put in place meanwhile
 * deletes segments the copied one needs: then it starts again from the new snapshot.
 */
async function copyState(source: string, dest: string): Promise<{ ref: SnapshotRef | null; last: number | undefined; attempts: number }> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    await rm(join(dest, SNAPSHOT_FILE), { force: true });
    for (const n of listSegments(dest)) await rm(join(dest, segmentName(n)));
    // copyFile reads the file it opened: a snapshot renamed over it meanwhile does not mix in.
    const copied = await copyIfPresent(join(source, SNAPSHOT_FILE), join(dest, SNAPSHOT_FILE));
    const ref = copied ? await snapshotOnDisk(dest) : null;
    const segments = listSegments(source).filter((n) => n > (ref?.segment ?? 0));
    let complete = true;
    for (const [i, n] of segments.entries()) {
      const from = join(source, segmentName(n));
      const to = join(dest, segmentName(n));
      // Only the newest segment is being written to: its last record may be cut short.
      complete = i === segments.length - 1 ? await copyWholeLines(from, to) : await copyIfPresent(from, to);
      if (!complete) break;
    }
    // Segments are deleted only once a newer snapshot is in place: the same one there now means none the copy needs went.
    if (complete && sameSnapshot(await snapshotOnDisk(source), ref)) return { ref, last: segments.at(-1), attempts: attempt };
  }
  throw new Error(`the hub's snapshots replaced its journal ${ATTEMPTS} times while it was copied; try again when it is less busy`);
}

/** Copies `from` to `to` and flushes it; false when `from` does not exist. */
async function copyIfPresent(from: string, to: string): Promise<boolean> {
  try {
    await copyFile(from, to);
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
  await flush(to);
  return true;
}

/** Copies a journal segment up to its last whole line (a record being appended is left out); false when it does not exist. */
async function copyWholeLines(from: string, to: string): Promise<boolean> {
  if (!(await copyIfPresent(from, to))) return false;
  const handle = await open(to, 'r+');
  try {
    const { size } = await handle.stat();
    const chunk = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, end - start, start);
      const newline = chunk.subarray(0, bytesRead).lastIndexOf(10);
      if (newline !== -1) {
        end = start + newline + 1;
        break;
      }
      end = start;
    }
    if (end < size) {
      await handle.truncate(end);
      await handle.sync();
    }
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * Copies the archived files the index names, then the index's whole lines: a file is put in place
 * before its index line is written, so each one named is there, unless it was deleted since
 * (pruned); then the index is read again, with its deletion. One that a later reading still names
 * and is still missing was lost, not deleted (a deletion is written to the index before its file
 * goes): the copy names it too, as the source does. An index that does not parse is copied as it
 * is, with every file: the hub rebuilds it from them, as it would on the source.
 */
async function copyArchive(from: string, to: string): Promise<{ archived: number; lost: string[] }> {
  let missingBefore = new Set<string>();
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    let text: string;
    try {
      text = await readFile(join(from, ARCHIVE_INDEX_FILE), 'utf8');
    } catch (error) {
      if (isMissing(error)) return { archived: 0, lost: [] };
      throw error;
    }
    const index = text.slice(0, text.lastIndexOf('\n') + 1);
    const named = namedFiles(index) ?? (await readdir(from)).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length));
    await mkdir(to, { recursive: true, mode: 0o700 });
    const missing = new Set<string>();
    for (const id of named) {
      if (existsSync(join(to, `${id}.json`))) continue;
      if (!(await copyIfPresent(join(from, `${id}.json`), join(to, `${id}.json`)))) missing.add(id);
    }
    // Each found missing once already, by a reading of the index older than this one: lost for good.
    // Without this a single lost file made every backup fail, saying to try again.
    const lost = [...missing].filter((id) => missingBefore.has(id));
    if (lost.length < missing.size) {
      missingBefore = missing;
      continue;
    }
    await writeFile(join(to, ARCHIVE_INDEX_FILE), index, { mode: 0o600 });
    await flush(join(to, ARCHIVE_INDEX_FILE));
    await syncDirectory(to);
    return { archived: named.length - lost.length, lost };
  }
  throw new Error(`archived workflows in ${from} were deleted faster than they could be copied ${ATTEMPTS} times; try again`);
}

/** The ids of the workflows the index holds once its deletions are applied; undefined when a line does not parse. */
function namedFiles(index: string): string[] | undefined {
  const ids = new Set<string>();
  for (const line of index.split('\n')) {
    if (!line) continue;
    let entry: { put?: { id?: unknown }; remove?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return undefined;
    }
    if (typeof entry.put?.id === 'string') ids.add(entry.put.id);
    else if (Array.isArray(entry.remove)) for (const id of entry.remove) ids.delete(String(id));
    else return undefined;
  }
  return [...ids];
}

/** Copies the report files under `from`, leaving out those being written (temporary names) and those deleted meanwhile. */
async function copyTree(from: string, to: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(from, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  await mkdir(to, { recursive: true, mode: 0o700 });
  for (const entry of entries) {
    if (entry.name.endsWith('.tmp')) continue;
    if (entry.isDirectory()) await copyTree(join(from, entry.name), join(to, entry.name));
    else if (entry.isFile()) await copyIfPresent(join(from, entry.name), join(to, entry.name));
  }
}

/** Flushes a copied file to disk: a backup is kept for when the machine fails. */
async function flush(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Removes what a failed backup wrote in `dest` (empty before it began), and `dest` itself when it was made for it. */
async function clear(dest: string, created: boolean): Promise<void> {
  if (created) return rm(dest, { recursive: true, force: true });
  for (const name of await readdir(dest)) await rm(join(dest, name), { recursive: true, force: true });
}
