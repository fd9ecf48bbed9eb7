import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { listSegments, segmentName } from './journal.ts';
import { holderAlive, ownProcess } from './lock.ts';
import type { SnapshotRef } from './manifest.ts';
import { SNAPSHOT_FILE, snapshotOnDisk } from './snapshot.ts';

/** A backup's staging folder in the data directory: hidden, named by the backup's pid and start time (as the lock); no file the hub reads is named so. */
const STAGING = /^\.backup\.(\d+)(?:-(\d+))?\.[0-9a-f]{12}$/;

/** Where the data directory or its file system refuses the folder or the links: the backup then copies the live files. */
const REFUSED = new Set(['EXDEV', 'EPERM', 'EACCES', 'EROFS', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK', 'ENOSPC', 'EDQUOT']);

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code ?? '';

/** The state of a data directory as of one moment, held by hard links that the hub's compaction cannot take away. */
export interface StagedState {
  /** The staging folder: remove it once copied (`dropStaged`). */
  dir: string;
  /** The staged snapshot (null: the directory had none). */
  ref: SnapshotRef | null;
  /** The staged segments after the snapshot, ascending; the hub may still append to the last. */
  segments: number[];
}

/**
 * Hard-links the journal segments of `source`, then its snapshot, into a private folder of it
 * (instant, so a busy hub's compaction has no time to replace them, and a file it deletes or renames
 * over later stays whole behind its link); undefined when the folder or links are refused.
 * Segments first: one is deleted only once a snapshot holding it is in place, so every segment the
 * snapshot linked after them does not hold was still there to be linked.
 */
export async function stageState(source: string): Promise<StagedState | undefined> {
  await removeDeadBackups(source);
  const dir = join(source, `.backup.${ownProcess('-')}.${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (error) {
    if (REFUSED.has(codeOf(error))) return undefined;
    throw error;
  }
  try {
    const linked: number[] = [];
    for (const n of listSegments(source)) if (await linkIfPresent(join(source, segmentName(n)), join(dir, segmentName(n)))) linked.push(n);
    const ref = (await linkIfPresent(join(source, SNAPSHOT_FILE), join(dir, SNAPSHOT_FILE))) ? await snapshotOnDisk(dir) : null;
    return { dir, ref, segments: linked.filter((n) => n > (ref?.segment ?? 0)) };
  } catch (error) {
    await dropStaged(dir);
    if (REFUSED.has(codeOf(error))) return undefined;
    throw error;
  }
}

/** Removes a staging folder and the links in it (the hub's files stay). */
export function dropStaged(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Links `from` as `to`; false when `from` is gone (a segment folded into a newer snapshot meanwhile, or an empty one). */
async function linkIfPresent(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Removes the staging folders of backups that died before removing their own (a killed backup's
 * links keep the disk space of the files they name); those of running ones are kept. Returns the
 * names removed. Run by each backup and by the hub's start.
 */
export async function removeDeadBackups(source: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(source)) {
    const match = STAGING.exec(name);
    const pid = Number(match?.[1]);
    // A pid alive with another start time was reused by a stranger after the backup died.
    if (!pid || holderAlive({ pid, start: match?.[2] })) continue;
    try {
      await dropStaged(join(source, name));
      removed.push(name);
    } catch {
      // Another backup removed it, or no right to: neither stops a backup or a start.
    }
  }
  return removed;
}
