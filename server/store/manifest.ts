import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { syncedWrite } from './synced-write.ts';

/**
 * What lets monitors resume by patches across a clean restart: the patch stream's epoch, and the
 * workflows deleted from the archive in it (a version held of one of those resumes nothing: its id
 * may have been taken again, with versions from 1).
 */
export interface ResumePoint {
  epoch: string;
  deleted: readonly string[];
}

/** Which snapshot a data directory holds: the journal segment and record it covers, and its checksum. */
export interface SnapshotRef {
  segment: number;
  seq: number;
  sha256: string;
}

/**
 * What the data directory must hold, so that a missing or swapped file is noticed at start-up:
 * the snapshots the journal may continue from (null: none, an empty directory's start), and the
 * newest journal segment. A compaction lists the new snapshot beside the one on disk before it
 * replaces it, so a crash at any point leaves a directory the manifest describes.
 */
export interface Manifest {
  format: 1;
  snapshots: Array<SnapshotRef | null>;
  segment: number;
  /**
   * The patch stream's epoch, written by a clean stop only, once the snapshot named first holds
   * every version monitors were sent: the next start resumes them. A start writes the manifest
   * again without it, so a crash after that start cannot reuse it.
   */
  epoch?: string;
  /** With `epoch`: the workflows deleted from the archive in it (see ResumePoint). */
  deleted?: string[];
}

export const MANIFEST_FILE = 'manifest.json';

const isRef = (value: unknown): value is SnapshotRef =>
  typeof value === 'object' &&
  value !== null &&
  Number.isSafeInteger((value as SnapshotRef).segment) &&
  Number.isSafeInteger((value as SnapshotRef).seq) &&
  /^[0-9a-f]{64}$/.test((value as SnapshotRef).sha256);

/** What a data directory's manifest file gives: the manifest, or why there is none ("is missing", "is unreadable (…)"). */
export type ManifestRead = { manifest: Manifest; problem?: undefined } | { manifest?: undefined; problem: string };

/** Reads the manifest; a directory without one is new, of a hub from before manifests, or damaged (recovery tells which). */
export function readManifest(dir: string): ManifestRead {
  const file = join(dir, MANIFEST_FILE);
  if (!existsSync(file)) return { problem: 'is missing' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    return { problem: `is unreadable (${(error as Error).message})` };
  }
  const manifest = parsed as Manifest;
  if (manifest?.format !== 1 || !Array.isArray(manifest.snapshots) || !manifest.snapshots.every((s) => s === null || isRef(s)) || !Number.isSafeInteger(manifest.segment) || !(manifest.epoch === undefined || typeof manifest.epoch === 'string')) {
    return { problem: 'is not a manifest this hub can read' };
  }
  return { manifest };
}

/** Replaces the manifest atomically and durably (written before the files it names change). */
export function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  return syncedWrite(dir, MANIFEST_FILE, JSON.stringify(manifest));
}

/** The resume point a clean stop wrote, or undefined when it wrote none (or one this hub cannot read: monitors then start over). */
export function resumePointOf(manifest: Manifest): ResumePoint | undefined {
  const { epoch, deleted = [] } = manifest;
  if (typeof epoch !== 'string' || !Array.isArray(deleted) || !deleted.every((id) => typeof id === 'string')) return undefined;
  return { epoch, deleted };
}

/** Whether two references name the same snapshot (null: no snapshot). */
export function sameSnapshot(a: SnapshotRef | null, b: SnapshotRef | null): boolean {
  return a === null || b === null ? a === b : a.seq === b.seq && a.segment === b.segment && a.sha256 === b.sha256;
}
