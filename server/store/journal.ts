import { closeSync, fdatasync, ftruncate, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, write, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HubError } from '../../shared/errors.ts';
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

/** What reading a segment found. */
export interface SegmentContents {
  /** Bytes of the file that hold whole, valid records. */
  validBytes: number;
  /** Whether a torn or corrupt last record was dropped. */
  droppedTail: boolean;
}

/**
 * Reads a segment, handing each record to `visit` as it is decoded (a segment's records are never
 * all held at once: replay keeps only the documents). A torn or corrupt last record is dropped
 * (the write it belonged to was never acknowledged); a bad record followed by good ones is
 * corruption of acknowledged data and an error that names the file and line.
 */
export function readSegment(file: string, visit: (record: JournalRecord) => void): SegmentContents {
  const buffer = readFileSync(file);
  let start = 0;
  let line = 0;
  while (start < buffer.length) {
    const end = buffer.indexOf(10, start);
    line++;
    const record = end === -1 ? null : decodeLine(buffer, start, end);
    if (!record) {
      const isLast = end === -1 || end + 1 >= buffer.length;
      if (!isLast) throw new HubError('INTERNAL', `journal ${file} is corrupt at line ${line}; records after it exist, refusing to drop them`);
      return { validBytes: start, droppedTail: true };
    }
    visit(record);
    start = end + 1;
  }
  return { validBytes: start, droppedTail: false };
}

/**
 * Appends records to the current segment; one write (and optionally one fsync) per batch.
 * The caller keeps at most one append in flight. Without fsync the write is synchronous.
 */
export class Journal {
  private fd: number;
  private offset = 0;
  private bytesSinceSnapshot = 0;

  private constructor(
    private readonly dir: string,
    private segment: number,
    private readonly fsync: boolean,
  ) {
    this.fd = openSync(join(dir, segmentName(segment)), 'wx');
  }

  /** Opens a new segment after the highest existing one. */
  static create(dir: string, afterSegment: number, fsync: boolean): Journal {
    return new Journal(dir, afterSegment + 1, fsync);
  }

  /** The segment being written. */
  get currentSegment(): number {
    return this.segment;
  }

  /** Bytes appended since the last rotation. */
  get size(): number {
    return this.bytesSinceSnapshot;
  }

  /**
   * Appends whole encoded records. On failure the segment is cut back to where it was,
   * so a refused batch leaves no trace on disk, and the error is thrown.
   */
  append(records: string | Uint8Array): Promise<void> {
    const data = typeof records === 'string' ? Buffer.from(records, 'utf8') : records;
    const position = this.offset;
    if (!this.fsync) return this.appendNow(data, position);
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => ftruncate(this.fd, position, () => reject(error));
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
      } catch {
        // The write error is the one to report.
      }
      return Promise.reject(error as Error);
    }
    this.offset = position + data.length;
    this.bytesSinceSnapshot += data.length;
    return Promise.resolve();
  }

  /** Closes the current segment and starts the next; returns the number of the closed one. */
  rotate(): number {
    const closed = this.segment;
    closeSync(this.fd);
    this.segment++;
    this.fd = openSync(join(this.dir, segmentName(this.segment)), 'wx');
    this.offset = 0;
    this.bytesSinceSnapshot = 0;
    return closed;
  }

  /** Closes the segment; an empty one is removed. */
  close(): void {
    closeSync(this.fd);
    if (this.offset === 0) unlinkSync(join(this.dir, segmentName(this.segment)));
  }
}
