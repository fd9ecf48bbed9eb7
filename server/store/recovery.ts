import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { HubError } from '../../shared/errors.ts';
import type { DocKey, StoredDoc } from '../domain/machinery/state.ts';
import { linesFrom, listSegments, readSegment, segmentName, type Damage } from './journal.ts';
import { ARCHIVE_DIR, ARCHIVE_INDEX_FILE } from './archive-files.ts';
import { MANIFEST_FILE, readManifest, resumePointOf, sameSnapshot, type Manifest, type ResumePoint, type SnapshotRef } from './manifest.ts';
import { replayRecord } from './records.ts';
import { readSnapshot, replaceSnapshot, snapshotText, SNAPSHOT_FILE, type Snapshot, type SnapshotIndex } from './snapshot.ts';

/** The documents rebuilt from disk, and where the journal stands. */
export interface Recovered {
  docs: Map<DocKey, StoredDoc>;
  seq: number;
  /** The documents the journal changed after the snapshot (its records replayed). */
  changedSinceSnapshot?: ReadonlySet<DocKey>;
  /** The highest segment number seen (new appends go to the next one). */
  lastSegment: number;
  warnings: string[];
  /**
   * Where the run that stopped cleanly into exactly this state (the snapshot alone, no journal
   * record after it) left its monitors: versions they hold of it may be resumed. Undefined otherwise.
   */
  resume?: ResumePoint;
}

/** What recovery found in the data directory besides the documents. */
export interface RecoveredFromDisk extends Recovered {
  /** The snapshot the journal continued from (null: none). */
  snapshot: SnapshotRef | null;
  /** Whether the snapshot is of the first format, without a checksum, to be written anew. */
  oldSnapshot: boolean;
  /** Where each document lies in the snapshot file (a start-up's read of a format-3 snapshot). */
  snapshotIndex: SnapshotIndex | undefined;
  changedSinceSnapshot: ReadonlySet<DocKey>;
}

export interface RecoverOptions {
  /** Replay only the segments up to this one and change no file (a compaction's read). */
  uptoSegment?: number;
  /** Called after each replayed record (the compaction worker paces itself there). */
  onRecord?: () => void;
  /** Start from the records before a damaged one, deleting it and everything after it. */
  truncateDamaged?: boolean;
}

const OVERRULE = '`switchboard start --truncate-damaged-journal`';

/** The journal's first record (its seq, undefined when its line does not decode) and its file; undefined when no segment holds one. */
function journalStart(dir: string, segments: number[]): { file: string; seq: number | undefined } | undefined {
  for (const n of segments) {
    const file = join(dir, segmentName(n));
    let seq: number | undefined;
    const { damage } = readSegment(file, (record) => {
      seq = record.seq;
      return 'read no further';
    });
    if (damage) return { file, seq };
  }
  return undefined;
}

/**
 * The snapshot to start from when no manifest says which the journal continues from. Only a
 * directory of a hub from before manifests may lack one: it has no archive index (a hub writes
 * its manifest at its first start, then makes `archive/index.jsonl`) and no snapshot with a
 * checksum. Any other is refused, or, with `overrule`, started from what is there with a warning,
 * unless the snapshot the journal continues from is gone: then nothing can be started from.
 */
function withoutManifest(dir: string, problem: string, snapshot: Snapshot | undefined, segments: number[], overrule: boolean, warnings: string[]): SnapshotRef | null {
  const manifestFile = join(dir, MANIFEST_FILE);
  const file = join(dir, SNAPSHOT_FILE);
  const archive = join(dir, ARCHIVE_DIR);
  const index = join(archive, ARCHIVE_INDEX_FILE);
  const archived = existsSync(archive) && readdirSync(archive).some((name) => name.endsWith('.json'));
  const used = archived || existsSync(index);
  if (!snapshot) {
    const first = journalStart(dir, segments);
    const both = problem === 'is missing' ? `${manifestFile} and ${file} are missing` : `${manifestFile} ${problem} and ${file} is missing`;
    // Its records patch documents only the snapshot held: replayed on nothing they would build a partial state.
    if (first?.seq !== undefined && first.seq > 1) {
      throw new HubError('INTERNAL', `${both}, while the journal starts at record ${first.seq} (${first.file}): it continues from a snapshot that is gone; restore them from a backup, or move the data directory aside to start empty`);
    }
    if (used && !first) {
      const where = archived ? `${archive} holds archived workflows` : `${index} exists (a hub makes it at its first start, after its manifest)`;
      throw new HubError('INTERNAL', `${both}, yet ${where}: the state of this data directory was deleted; restore them, or move the data directory aside to start empty`);
    }
  }
  if (problem === 'is missing' && !used && (!snapshot || snapshot.format === 1)) return snapshot?.ref ?? null;
  const from = snapshot ? `${file} (record ${snapshot.seq}) and the journal after it` : 'the journal';
  if (!overrule) {
    const what = snapshot ? `${manifestFile} ${problem} while ${file} exists; refusing to start from a snapshot nothing vouches for` : `${manifestFile} ${problem}; refusing to start from a journal nothing vouches for`;
    throw new HubError('INTERNAL', `${what} (a newer snapshot or journal segment may be gone). Restore it from a backup, or, to start from ${from} as they are, run ${OVERRULE} once.`);
  }
  warnings.push(`--truncate-damaged-journal: ${manifestFile} ${problem}; started from ${from} as they are, without knowing whether a newer snapshot or segment is gone`);
  return snapshot?.ref ?? null;
}

/** The snapshot's reference, once it is known to be the one the manifest says the journal continues from. */
function checkSnapshot(dir: string, manifest: Manifest, snapshot: Snapshot | undefined): SnapshotRef | null {
  const file = join(dir, SNAPSHOT_FILE);
  const ref = snapshot?.ref ?? null;
  if (manifest.snapshots.some((listed) => sameSnapshot(listed, ref))) return ref;
  const expected = manifest.snapshots[0];
  const wanted = expected ? `the snapshot of record ${expected.seq} (sha256 ${expected.sha256})` : 'no snapshot';
  if (!snapshot) throw new HubError('INTERNAL', `${file} is missing, but the journal continues from ${wanted}; restore it, or move the data directory aside to start empty`);
  throw new HubError('INTERNAL', `${file} (record ${snapshot.seq}, sha256 ${snapshot.ref.sha256}) is not the snapshot the journal continues from (${wanted}); refusing to start with an altered state`);
}

/**
 * Whether `damage`, after record `seq`, lies inside the last batch written: every whole line
 * after it belongs to one batch that began at or before the damaged line, and the damage holds
 * at least one of its records. With fsync a batch is written only once the one before is on disk,
 * so a power loss can damage only the last; its fdatasync never returned, so it was never acknowledged.
 */
function lastBatchDamaged(damage: Damage, seq: number): boolean {
  const batch = damage.batchAfter;
  return batch !== undefined && batch.from <= seq + 1 && batch.firstWhole > seq + 1;
}

/**
 * Cuts a segment at `offset` and flushes the cut: were it lost in a power loss while the
 * acknowledged records of the next segment were not, the next start would find them after damage.
 */
function cutDurably(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, offset);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** What starting from the good records before `damage` would delete, in words. */
function whatIsDropped(dir: string, segment: number, damage: Damage, later: number[]): string {
  const file = segmentName(segment);
  const parts = [`${linesFrom(join(dir, file), damage.offset)} line(s) of ${file} from byte ${damage.offset}`];
  for (const n of later) parts.push(`${segmentName(n)} (${linesFrom(join(dir, segmentName(n)), 0)} line(s))`);
  return parts.join(', ');
}

/**
 * Loads the snapshot and replays the journal segments after it, oldest first, checking that the
 * snapshot is the one the manifest names and that records follow each other with no gap. Segments
 * the snapshot contains are removed. Only the newest segment's last record can be torn by a crash
 * (it was never acknowledged): it is dropped and cut from the file. Any other damage refuses the
 * start, naming the file and byte, unless `truncateDamaged` says to drop it and all after it.
 */
export async function recover(dir: string, options: RecoverOptions = {}): Promise<RecoveredFromDisk> {
  const full = options.uptoSegment === undefined;
  const upto = options.uptoSegment ?? Infinity;
  const overrule = full && options.truncateDamaged === true;
  const { manifest, problem } = readManifest(dir);
  const snapshot = await readSnapshot(dir, full);
  const warnings: string[] = [];
  const segments = listSegments(dir);
  const ref = manifest ? checkSnapshot(dir, manifest, snapshot) : withoutManifest(dir, problem, snapshot, segments, overrule, warnings);
  const docs = new Map<DocKey, StoredDoc>(snapshot?.docs);
  const changed = new Set<DocKey>();
  let seq = snapshot?.seq ?? 0;
  const covered = snapshot?.segment ?? 0;
  const lastSegment = Math.max(covered, ...segments);
  // Then the last segment there is not the newest: damage at its end was acknowledged, not torn.
  const newestGone = full && manifest !== undefined && manifest.segment > covered && !segments.includes(manifest.segment);
  if (newestGone) {
    const missing = join(dir, segmentName(manifest.segment));
    if (!overrule) {
      throw new HubError('INTERNAL', `journal ${missing} is missing (the manifest names it as the newest segment); refusing to start without its records. Restore it from a backup, or, to start from the records before it, run ${OVERRULE} once.`);
    }
  }
  const live = segments.filter((n) => n > covered && n <= upto);
  if (full) for (const n of segments) if (n <= covered) unlinkSync(join(dir, segmentName(n)));
  for (const [index, n] of live.entries()) {
    const file = join(dir, segmentName(n));
    const { damage } = readSegment(file, (record) => {
      if (record.seq <= seq) return undefined;
      if (record.seq !== seq + 1) return record.seq === seq + 2 ? `record ${seq + 1} is missing before it` : `records ${seq + 1} to ${record.seq - 1} are missing before it`;
      replayRecord(docs, record);
      for (const change of record.changes) changed.add(change.doc);
      seq = record.seq;
      options.onRecord?.();
      return undefined;
    });
    if (!damage) continue;
    const later = live.slice(index + 1);
    if (full && later.length === 0 && !newestGone && (damage.torn || lastBatchDamaged(damage, seq))) {
      const what = damage.torn ? 'a torn or corrupt last record' : `records ${seq + 1} on (${linesFrom(file, damage.offset)} lines of the last batch written, which began at record ${damage.batchAfter!.from}), damaged inside,`;
      warnings.push(`journal ${file}: dropped ${what} at byte ${damage.offset} (the write it belonged to was never acknowledged)`);
      cutDurably(file, damage.offset);
      break;
    }
    const dropped = whatIsDropped(dir, n, damage, later);
    if (!overrule) {
      throw new HubError(
        'INTERNAL',
        `journal ${file} is damaged at byte ${damage.offset} (line ${damage.line}): ${damage.reason}. The records after record ${seq} were acknowledged; ` +
          `refusing to start without them. To start from record ${seq}, deleting ${dropped}, run ${OVERRULE} once.`,
      );
    }
    cutDurably(file, damage.offset);
    for (const m of later) unlinkSync(join(dir, segmentName(m)));
    warnings.push(`--truncate-damaged-journal: ${file} was damaged at byte ${damage.offset} (${damage.reason}); deleted ${dropped}; the state is as of record ${seq}`);
    break;
  }
  if (newestGone) warnings.push(`--truncate-damaged-journal: journal ${join(dir, segmentName(manifest.segment))} was missing (the manifest named it as the newest segment); the state is as of record ${seq}`);
  // Kept only when the start is from exactly what the clean stop left: its snapshot, and no record after it.
  const resume = full && manifest && seq === (snapshot?.seq ?? 0) && warnings.length === 0 && sameSnapshot(manifest.snapshots[0] ?? null, ref) ? resumePointOf(manifest) : undefined;
  return { docs, seq, lastSegment, snapshot: ref, oldSnapshot: snapshot?.format === 1, snapshotIndex: snapshot?.index, changedSinceSnapshot: changed, warnings, ...(resume ? { resume } : {}) };
}

/**
 * Folds every segment up to `uptoSegment` into a new snapshot, then deletes those segments.
 * Runs in a worker thread so the hub's event loop never parses or serialises the whole state.
 */
export async function compact(dir: string, uptoSegment: number, onRecord?: () => void): Promise<{ seq: number; docs: number }> {
  const { docs, seq } = await recover(dir, { uptoSegment, ...(onRecord ? { onRecord } : {}) });
  await replaceSnapshot(dir, snapshotText({ segment: uptoSegment, seq, docs: [...docs] }));
  return { seq, docs: docs.size };
}
