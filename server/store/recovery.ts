import { existsSync, readdirSync, truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { HubError } from '../../shared/errors.ts';
import type { DocKey, StoredDoc } from '../domain/machinery/state.ts';
import { linesFrom, listSegments, readSegment, segmentName, type Damage } from './journal.ts';
import { ARCHIVE_DIR } from './archive-files.ts';
import { MANIFEST_FILE, readManifest, resumePointOf, sameSnapshot, type Manifest, type SnapshotRef } from './manifest.ts';
import type { ResumePoint } from './store.ts';
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

/** The snapshot's reference, once it is known to be the one the manifest says the journal continues from. */
function checkSnapshot(dir: string, manifest: Manifest | undefined, snapshot: Snapshot | undefined): SnapshotRef | null {
  const file = join(dir, SNAPSHOT_FILE);
  if (!manifest) {
    // A directory of a hub from before manifests: only its snapshots are of the first format.
    if (snapshot && snapshot.format !== 1) throw new HubError('INTERNAL', `${join(dir, MANIFEST_FILE)} is missing while ${file} exists; refusing to start from a snapshot nothing vouches for`);
    // A hub writes its manifest at its first start, long before it archives anything: this one's state was deleted.
    const archive = join(dir, ARCHIVE_DIR);
    if (!snapshot && existsSync(archive) && readdirSync(archive).some((name) => name.endsWith('.json'))) {
      throw new HubError('INTERNAL', `${join(dir, MANIFEST_FILE)} and ${file} are missing, yet ${archive} holds archived workflows: the state of this data directory was deleted; restore them, or move the data directory aside to start empty`);
    }
    return snapshot?.ref ?? null;
  }
  const ref = snapshot?.ref ?? null;
  if (manifest.snapshots.some((listed) => sameSnapshot(listed, ref))) return ref;
  const expected = manifest.snapshots[0];
  const wanted = expected ? `the snapshot of record ${expected.seq} (sha256 ${expected.sha256})` : 'no snapshot';
  if (!snapshot) throw new HubError('INTERNAL', `${file} is missing, but the journal continues from ${wanted}; restore it, or move the data directory aside to start empty`);
  throw new HubError('INTERNAL', `${file} (record ${snapshot.seq}, sha256 ${snapshot.ref.sha256}) is not the snapshot the journal continues from (${wanted}); refusing to start with an altered state`);
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
  const manifest = readManifest(dir);
  const snapshot = await readSnapshot(dir, full);
  const ref = checkSnapshot(dir, manifest, snapshot);
  const docs = new Map<DocKey, StoredDoc>(snapshot?.docs);
  const warnings: string[] = [];
  const changed = new Set<DocKey>();
  let seq = snapshot?.seq ?? 0;
  const covered = snapshot?.segment ?? 0;
  const segments = listSegments(dir);
  const lastSegment = Math.max(covered, ...segments);
  if (full && manifest && manifest.segment > covered && !segments.includes(manifest.segment)) {
    throw new HubError('INTERNAL', `journal ${join(dir, segmentName(manifest.segment))} is missing (the manifest names it as the newest segment); refusing to start without its records`);
  }
  const live = segments.filter((n) => n > covered && n <= upto);
  if (full) for (const n of segments) if (n <= covered) unlinkSync(join(dir, segmentName(n)));
  for (const [index, n] of live.entries()) {
    const file = join(dir, segmentName(n));
    const { damage } = readSegment(file, (record) => {
      if (record.seq <= seq) return undefined;
      if (record.seq !== seq + 1) return `records ${seq + 1} to ${record.seq - 1} are missing before it`;
      replayRecord(docs, record);
      for (const change of record.changes) changed.add(change.doc);
      seq = record.seq;
      options.onRecord?.();
      return undefined;
    });
    if (!damage) continue;
    const later = live.slice(index + 1);
    if (full && damage.torn && later.length === 0) {
      warnings.push(`journal ${file}: dropped a torn or corrupt last record at byte ${damage.offset} (the write it belonged to was never acknowledged)`);
      truncateSync(file, damage.offset);
      break;
    }
    const dropped = whatIsDropped(dir, n, damage, later);
    if (!full || !options.truncateDamaged) {
      throw new HubError(
        'INTERNAL',
        `journal ${file} is damaged at byte ${damage.offset} (line ${damage.line}): ${damage.reason}. The records after record ${seq} were acknowledged; ` +
          `refusing to start without them. To start from record ${seq}, deleting ${dropped}, run \`switchboard start --truncate-damaged-journal\` once.`,
      );
    }
    truncateSync(file, damage.offset);
    for (const m of later) unlinkSync(join(dir, segmentName(m)));
    warnings.push(`--truncate-damaged-journal: ${file} was damaged at byte ${damage.offset} (${damage.reason}); deleted ${dropped}; the state is as of record ${seq}`);
    break;
  }
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
