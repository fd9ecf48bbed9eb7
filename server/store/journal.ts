import { closeSync, fdatasync, ftruncate, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { decodeLine, type JournalRecord } from './records.ts';

const SEGMENT = /^(\d{8})\.journal$/;

/** The file name of journal segment `n`. */
export function segmentName(n: number): string {
  return String(n).padStart(8, '0') + '.journal';
}

/** The numbers of the journal segments in `dir`, ascending. */
export function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Deletes the segments a new snapshot contains: every one up to `uptoSegment`. */
export function dropSegments(dir: string, uptoSegment: number): void {
  for (const n of listSegments(dir)) if (n <= uptoSegment) unlinkSync(join(dir, segmentName(n)));
}

/** Where a segment stops holding good records. */
export interface Damage {
  /** Byte offset of the first line that is not kept. */
  offset: number;
  /** Its line number, from 1. */
  line: number;
  /**
   * A record that does not decode on the file's last line: what a crash in the middle of a write
   * leaves. Also a whole line that fails its checksum: a killed process leaves only a prefix (no
   * newline), but after a power loss the unacknowledged last write (fdatasync not returned) may
   * be on disk at full length with some of its blocks not, and nothing tells that from a byte
   * flipped in an acknowledged last record; refusing it would stop the start after every such loss.
   * (Damage with whole lines of the same last batch after it is told by `batchAfter`.)
   */
  torn: boolean;
  reason: string;
  /**
   * When every whole line after a damaged one belongs to one batch (its records carry their
   * place in it): that batch's first record, and the first whole record after the damage.
   * Recovery drops the damage as torn when the batch began at or before the damaged line.
   */
  batchAfter?: { from: number; firstWhole: number };
}

/** What reading a segment found: `damage` when it stopped before the end of the file. */
export interface SegmentContents {
  /** Bytes of the file that hold whole, valid records. */
  validBytes: number;
  damage?: Damage;
}

/**
 * Reads a segment, handing each record to `visit` as it is decoded (a segment's records are never
 * all held at once: replay keeps only the documents). Reading stops at a line that does not decode
 * (torn or corrupt), or where `visit` returns a reason to stop; the caller decides what that means.
 */
export function readSegment(file: string, visit: (record: JournalRecord) => string | undefined): SegmentContents {
  const buffer = readFileSync(file);
  let start = 0;
  let line = 0;
  while (start < buffer.length) {
    const end = buffer.indexOf(10, start);
    line++;
    const record = end === -1 ? null : decodeLine(buffer, start, end);
    if (!record) {
      const torn = end === -1 || end + 1 >= buffer.length;
      const damage: Damage = { offset: start, line, torn, reason: end === -1 ? 'the record is cut short' : 'the record fails its checksum' };
      const batchAfter = torn ? undefined : oneBatchFrom(buffer, end + 1);
      return { validBytes: start, damage: batchAfter ? { ...damage, batchAfter } : damage };
    }
    const stop = visit(record);
    if (stop !== undefined) return { validBytes: start, damage: { offset: start, line, torn: false, reason: stop } };
    start = end + 1;
  }
  return { validBytes: start };
}

/**
 * The batch every whole line from byte `at` on belongs to (lines that do not decode are passed
 * over), with the first whole record's seq; undefined when there is none, or more than one batch.
 */
function oneBatchFrom(buffer: Buffer, at: number): { from: number; firstWhole: number } | undefined {
  let found: { from: number; firstWhole: number } | undefined;
  let last = 0;
  while (at < buffer.length) {
    const end = buffer.indexOf(10, at);
    const record = end === -1 ? null : decodeLine(buffer, at, end);
    if (record) {
      const from = record.seq - (record.position ?? 0);
      if (found ? from !== found.from || record.seq <= last : false) return undefined;
      found ??= { from, firstWhole: record.seq };
      last = record.seq;
    }
    at = end === -1 ? buffer.length : end + 1;
  }
  return found;
}

/** How many lines (whole or cut short) a segment holds from byte `offset` on. */
export function linesFrom(file: string, offset: number): number {
  const buffer = readFileSync(file);
  let lines = 0;
  for (let at = offset; at < buffer.length; lines++) {
    const end = buffer.indexOf(10, at);
    at = end === -1 ? buffer.length : end + 1;
  }
  return lines;
}

/**
 * Appends records to the current segment; one write (and optionally one fsync) per batch.
 * The caller keeps at most one append in flight. Without fsync the write is synchronous.
 */
export class Journal {
  private fd: number;
  private offset = 0;
  private bytesSinceSnapshot = 0;
  /**
   * Set when a refused batch could not be cut back off the segment: its records stay on disk after
   * the last acknowledged one, and a later batch written over part of them would leave the rest as
   * damage between acknowledged records. Nothing more is written; a restart reads what is there.
   */
  private stuck: Error | undefined;

  private constructor(
    private readonly dir: string,
    private segment: number,
    private readonly fsync: boolean,
    carried: number,
  ) {
    this.fd = openSync(join(dir, segmentName(segment)), 'wx');
    this.bytesSinceSnapshot = carried;
  }

  /**
   * Opens a new segment after the highest existing one. `carried`: the bytes of the earlier
   * segments no snapshot holds yet (what a crash left), which count toward the next snapshot.
   */
  static create(dir: string, afterSegment: number, fsync: boolean, carried = 0): Journal {
    return new Journal(dir, afterSegment + 1, fsync, carried);
  }

  /** Why nothing more is written until a restart (a refused batch could not be cut back), or undefined. */
  get failure(): Error | undefined {
    return this.stuck;
  }

  /** The segment being written. */
  get currentSegment(): number {
    return this.segment;
  }

  /** Bytes no snapshot holds yet: appended since the last rotation, and any carried over at start-up. */
  get size(): number {
    return this.bytesSinceSnapshot;
  }

  /**
   * Appends whole encoded records. On failure the segment is cut back to where it was,
   * so a refused batch leaves no trace on disk, and the error is thrown.
   */
  append(records: string | Uint8Array): Promise<void> {
    if (this.stuck) return Promise.reject(this.stuck);
    const data = typeof records === 'string' ? Buffer.from(records, 'utf8') : records;
    const position = this.offset;
    if (!this.fsync) return this.appendNow(data, position);
    return new Promise((resolve, reject) => {
      const fail = (error: Error) =>
        ftruncate(this.fd, position, (cutError) => {
          if (cutError) this.stick(cutError);
          reject(error);
        });
      const writeFrom = (done: number) => {
        write(this.fd, data, done, data.length - done, position + done, (error, written) => {
          if (error) return fail(error);
          if (done + written < data.length) return writeFrom(done + written);
          const finish = () => {
            this.offset = position + data.length;
            this.bytesSinceSnapshot += data.length;
            resolve();
          };
          fdatasync(this.fd, (syncError) => (syncError ? fail(syncError) : finish()));
        });
      };
      writeFrom(0);
    });
  }

  /**
   * Without fsync a write only copies the batch into the page cache (tens of µs), so it is made
   * at once: the batch is acknowledged in the same turn of the event loop that applied it,
   * instead of one turn later after a round trip through libuv's thread pool.
   */
  private appendNow(data: Uint8Array, position: number): Promise<void> {
    try {
      for (let done = 0; done < data.length; ) done += writeSync(this.fd, data, done, data.length - done, position + done);
    } catch (error) {
      try {
        ftruncateSync(this.fd, position);
      } catch (cutError) {
        // The write error is the one to report for this batch; every later one is refused.
        this.stick(cutError as Error);
      }
      return Promise.reject(error as Error);
    }
    this.offset = position + data.length;
    this.bytesSinceSnapshot += data.length;
    return Promise.resolve();
  }

  private stick(cutError: Error): void {
    this.stuck = new Error(`journal segment ${segmentName(this.segment)} could not be cut back after a failed write (${cutError.message}): nothing more is written until the hub restarts`);
  }

  /** Closes the current segment and starts the next; returns the number of the closed one. Throws, changing nothing, when the next cannot be created. */
  rotate(): number {
    const closed = this.segment;
    // Opened before the current one is closed: a failure leaves writes going where they went, not to a closed descriptor another file may get.
    const fd = openSync(join(this.dir, segmentName(closed + 1)), 'wx');
    closeSync(this.fd);
    this.fd = fd;
    this.segment = closed + 1;
    this.offset = 0;
    this.bytesSinceSnapshot = 0;
    return closed;
  }

  /** Closes the segment; returns whether it is empty (the caller removes it once the manifest no longer names it). */
  close(): boolean {
    closeSync(this.fd);
    return this.offset === 0;
  }
}
