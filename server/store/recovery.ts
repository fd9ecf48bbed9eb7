import { truncateSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { DocKey, StoredDoc } from '../domain/state.ts';
import { dropSegments, listSegments, readSegment, segmentName } from './journal.ts';
import { replayRecord } from './records.ts';
import { readSnapshot, writeSnapshot } from './snapshot.ts';

/** The documents rebuilt from disk, and where the journal stands. */
export interface Recovered {
  docs: Map<DocKey, StoredDoc>;
  seq: number;
  /** The highest segment number seen (new appends go to the next one). */
  lastSegment: number;
  warnings: string[];
}

/**
 * Loads the snapshot and replays the journal segments after it, oldest first. Segments the
 * snapshot already contains are removed; a torn last record is dropped and cut from the file.
 * With `uptoSegment`, only segments up to it are replayed and nothing is cut. `onRecord` is
 * called after each replayed record (the compaction worker paces itself there).
 */
export async function recover(dir: string, uptoSegment = Infinity, onRecord?: () => void): Promise<Recovered> {
  const snapshot = await readSnapshot(dir);
  const docs = new Map<DocKey, StoredDoc>(snapshot.docs);
  const warnings: string[] = [];
  let seq = snapshot.seq;
  let lastSegment = snapshot.segment;
  for (const n of listSegments(dir)) {
    const file = join(dir, segmentName(n));
    lastSegment = Math.max(lastSegment, n);
    if (n <= snapshot.segment) {
      if (uptoSegment === Infinity) unlinkSync(file);
      continue;
    }
    if (n > uptoSegment) break;
    const contents = readSegment(file, (record) => {
      if (record.seq <= seq) return;
      replayRecord(docs, record);
      seq = record.seq;
      onRecord?.();
    });
    if (contents.droppedTail && uptoSegment === Infinity) {
      warnings.push(`journal ${file}: dropped a torn or corrupt last record (it was never acknowledged)`);
      truncateSync(file, contents.validBytes);
    }
  }
  return { docs, seq, lastSegment, warnings };
}

/**
 * Folds every segment up to `uptoSegment` into a new snapshot, then deletes those segments.
 * Runs in a worker thread so the hub's event loop never parses or serialises the whole state.
 */
export async function compact(dir: string, uptoSegment: number, onRecord?: () => void): Promise<{ seq: number; docs: number }> {
  const { docs, seq } = await recover(dir, uptoSegment, onRecord);
  await writeSnapshot(dir, { format: 1, segment: uptoSegment, seq, docs: [...docs] });
  dropSegments(dir, uptoSegment);
  return { seq, docs: docs.size };
}
