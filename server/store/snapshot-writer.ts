import { createHash } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { DocKey } from '../domain/machinery/state.ts';
import type { SnapshotRef } from './manifest.ts';
import type { FileRange, ItemSpans } from './item-spans.ts';
import { BODY_END, BODY_START, bodyHead, ENTRY_END, entryHead, entrySeparator, installSnapshot, PREFIX, SNAPSHOT_FILE, type SnapshotIndex } from './snapshot.ts';
import { syncDirectory } from './synced-write.ts';

/**
 * A document's JSON produced over many turns (pinned-json.ts): UTF-8 chunks and ranges of the
 * snapshot on disk to copy, a way to let go of it unread, and once read, where its items lie.
 */
export interface JsonSource {
  chunks: AsyncIterable<Buffer | FileRange>;
  release(): void;
  items?(): { spans: ItemSpans; copied: number; serialised: number };
}

/** One document of a snapshot being written: its JSON at version `v`, or none to copy its entry from the snapshot on disk. */
export interface SnapshotPart {
  key: DocKey;
  v: number;
  json: JsonSource | undefined;
}

/** Bytes gathered before a write to the file, and read at a time from the old one. */
const WRITE_BYTES = 1 << 20;
const TEMP_FILE = `.${SNAPSHOT_FILE}.part`;

/** The new file: its bytes go out in writes of about WRITE_BYTES, and everything after the checksum member into its SHA-256. */
class SnapshotFile {
  private readonly hash = createHash('sha256');
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes of the file so far, written or held. */
  size = 0;

  constructor(private readonly handle: FileHandle) {}

  async add(bytes: Buffer): Promise<void> {
    this.hash.update(bytes);
    this.held.push(bytes);
    this.heldBytes += bytes.length;
    this.size += bytes.length;
    if (this.heldBytes >= WRITE_BYTES) await this.flush();
  }

  /** Writes what is held, then the checksum into its place at the start; returns it. */
  async finish(): Promise<string> {
    await this.flush();
    const sha = this.hash.digest('hex');
    await this.handle.write(sha, PREFIX.length, 'latin1');
    await this.handle.sync();
    return sha;
  }

  private async flush(): Promise<void> {
    if (this.heldBytes === 0) return;
    const held = this.held;
    const bytes = this.heldBytes;
    this.held = [];
    this.heldBytes = 0;
    // One system call for all of it, without joining the pieces first.
    const { bytesWritten } = await this.handle.writev(held);
    // A disk that took part of it: the rest written again fails with its own reason (ENOSPC, say).
    if (bytesWritten < bytes) {
      const rest = Buffer.concat(held).subarray(bytesWritten);
      for (let done = 0; done < rest.length; ) done += (await this.handle.write(rest, done, rest.length - done)).bytesWritten;
    }
  }
}

/** Deletes what a snapshot interrupted by a crash left of itself: it would hold the room it took (a full disk) for good. */
export async function removeUnfinishedSnapshot(dir: string): Promise<void> {
  await unlink(join(dir, TEMP_FILE)).catch(() => undefined);
}

/** What writeSnapshot wrote, and how many items of the documents it serialised it copied instead. */
export interface WrittenSnapshot {
  ref: SnapshotRef;
  index: SnapshotIndex;
  bytes: number;
  items: { copied: number; serialised: number };
}

/**
 * Writes the snapshot of `parts` (every document, in order) as of record `seq`, containing the
 * journal up to segment `segment`, and puts it in place as replaceSnapshot does. An entry without
 * JSON is copied byte for byte from the snapshot on disk, where `previous` says it lies (at the
 * same version: the caller checked), and so are the ranges a document's JSON hands out (its
 * unchanged items). Nothing is parsed and nothing but the changed items serialised, so the cost
 * is that of the items that changed plus a copy of the rest.
 */
export async function writeSnapshot(dir: string, segment: number, seq: number, parts: SnapshotPart[], previous: SnapshotIndex | undefined): Promise<WrittenSnapshot> {
  const temp = join(dir, TEMP_FILE);
  const index: SnapshotIndex = new Map();
  const items = { copied: 0, serialised: 0 };
  let handle: FileHandle | undefined;
  const old = new OldSnapshot(join(dir, SNAPSHOT_FILE));
  let sha: string;
  let bytes: number;
  let finished = false;
  try {
    handle = await open(temp, 'w');
    // The checksum member is written last, over these placeholder bytes, once the body is hashed.
    await handle.write(`${PREFIX}${'0'.repeat(64)}",`, null, 'latin1');
    const file = new SnapshotFile(handle);
    file.size = BODY_START;
    const add = (piece: Buffer) => file.add(piece);
    await file.add(Buffer.from(bodyHead(segment, seq)));
    for (const [i, part] of parts.entries()) {
      await file.add(Buffer.from(entrySeparator(i)));
      const start = file.size;
      if (part.json) {
        await file.add(Buffer.from(entryHead(part.key, part.v)));
        const json = file.size;
        for await (const chunk of part.json.chunks) {
          if (Buffer.isBuffer(chunk)) await file.add(chunk);
          else await old.copy(chunk.start, chunk.end, add);
        }
        await file.add(Buffer.from(ENTRY_END));
        const read = part.json.items?.();
        if (read) {
          items.copied += read.copied;
          items.serialised += read.serialised;
        }
        index.set(part.key, { v: part.v, start, end: file.size, json, items: read?.spans });
      } else {
        const span = previous?.get(part.key);
        if (!span || span.v !== part.v) throw new Error(`document ${part.key} at version ${part.v} is not in the snapshot on disk to copy`);
        await old.copy(span.start, span.end, add);
        index.set(part.key, { v: part.v, start, end: file.size, json: start + span.json - span.start, items: span.items });
      }
    }
    await file.add(Buffer.from(BODY_END));
    await old.verify();
    sha = await file.finish();
    bytes = file.size;
    finished = true;
  } finally {
    await handle?.close();
    await old.close();
    // JSON left unread still pins its document.
    for (const part of parts) part.json?.release();
    // A snapshot that failed (a full disk) must not keep the room it took.
    if (!finished) await unlink(temp).catch(() => undefined);
  }
  const ref = { segment, seq, sha256: sha };
  await installSnapshot(dir, ref, async () => {
    await rename(temp, join(dir, SNAPSHOT_FILE));
    await syncDirectory(dir);
  });
  return { ref, index, bytes, items };
}

/**
 * The snapshot on disk, read for copying: opened when first needed, and read forward WRITE_BYTES
 * at a time, so that many small ranges (items between changed ones) cost few reads.
 */
class OldSnapshot {
  private handle: FileHandle | undefined;
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(private readonly path: string) {}

  /** Hands bytes [start, end) of the file to `use`, a piece at a time. */
  async copy(start: number, end: number, use: (piece: Buffer) => Promise<void>): Promise<void> {
    for (let at = start; at < end; ) {
      if (at < this.windowStart || at >= this.windowStart + this.window.length) await this.load(at);
      const upto = Math.min(end, this.windowStart + this.window.length);
      await use(this.window.subarray(at - this.windowStart, upto - this.windowStart));
      at = upto;
    }
  }

  async close(): Promise<void> {
    await this.handle?.close();
  }

  /**
   * Checks the file against its checksum, if anything was copied from it: a byte damaged since it
   * was written would otherwise go into the new snapshot under a checksum of its own.
   */
  async verify(): Promise<void> {
    if (!this.handle) return;
    const { size } = await this.handle.stat();
    const recorded = Buffer.alloc(64);
    await this.handle.read(recorded, 0, 64, PREFIX.length);
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(WRITE_BYTES);
    for (let at = BODY_START; at < size; ) {
      const { bytesRead } = await this.handle.read(chunk, 0, Math.min(chunk.length, size - at), at);
      if (bytesRead === 0) break;
      hash.update(chunk.subarray(0, bytesRead));
      at += bytesRead;
    }
    if (hash.digest('hex') !== recorded.toString('latin1')) {
      throw new Error(`${this.path} no longer matches its checksum (damaged since it was written), so nothing is copied from it; the next snapshot is written from memory`);
    }
  }

  /** Reads the window starting at `at` (a new buffer: pieces handed out earlier may still be held). */
  private async load(at: number): Promise<void> {
    this.handle ??= await open(this.path, 'r');
    const window = Buffer.allocUnsafe(WRITE_BYTES);
    const { bytesRead } = await this.handle.read(window, 0, window.length, at);
    if (bytesRead === 0) throw new Error(`the snapshot on disk ends at byte ${at}, before the entry it should hold`);
    this.window = window.subarray(0, bytesRead);
    this.windowStart = at;
  }
}
