import { createHash } from 'node:crypto';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { DocKey } from '../domain/machinery/state.ts';
import type { SnapshotRef } from './manifest.ts';
import { BODY_END, BODY_START, bodyHead, ENTRY_END, entryHead, entrySeparator, installSnapshot, PREFIX, SNAPSHOT_FILE, type SnapshotIndex } from './snapshot.ts';

/** A document's JSON produced over many turns (pinned-json.ts): UTF-8 chunks, and a way to let go of it unread. */
export interface JsonSource {
  chunks: AsyncIterable<Buffer>;
  release(): void;
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
    const bytes = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
    await this.handle.write(bytes, 0, bytes.length, null);
  }
}

/**
 * Writes the snapshot of `parts` (every document, in order) as of record `seq`, containing the
 * journal up to segment `segment`, and puts it in place as replaceSnapshot does. An entry without
 * JSON is copied byte for byte from the snapshot on disk, where `previous` says it lies (at the
 * same version: the caller checked). Nothing is parsed and nothing but the new JSON serialised, so
 * the cost is that of the documents that changed plus a copy of the rest.
 */
export async function writeSnapshot(dir: string, segment: number, seq: number, parts: SnapshotPart[], previous: SnapshotIndex | undefined): Promise<{ ref: SnapshotRef; index: SnapshotIndex; bytes: number }> {
  const temp = join(dir, TEMP_FILE);
  const index: SnapshotIndex = new Map();
  let handle: FileHandle | undefined;
  let old: FileHandle | undefined;
  let sha: string;
  let bytes: number;
  try {
    handle = await open(temp, 'w');
    if (parts.some((part) => !part.json)) old = await open(join(dir, SNAPSHOT_FILE), 'r');
    // The checksum member is written last, over these placeholder bytes, once the body is hashed.
    await handle.write(`${PREFIX}${'0'.repeat(64)}",`, null, 'latin1');
    const file = new SnapshotFile(handle);
    file.size = BODY_START;
    await file.add(Buffer.from(bodyHead(segment, seq)));
    for (const [i, part] of parts.entries()) {
      await file.add(Buffer.from(entrySeparator(i)));
      const start = file.size;
      if (part.json) {
        await file.add(Buffer.from(entryHead(part.key, part.v)));
        for await (const chunk of part.json.chunks) await file.add(chunk);
        await file.add(Buffer.from(ENTRY_END));
      } else {
        const span = previous?.get(part.key);
        if (!old || !span || span.v !== part.v) throw new Error(`document ${part.key} at version ${part.v} is not in the snapshot on disk to copy`);
        await copyRange(old, span.start, span.end, (piece) => file.add(piece));
      }
      index.set(part.key, { v: part.v, start, end: file.size });
    }
    await file.add(Buffer.from(BODY_END));
    sha = await file.finish();
    bytes = file.size;
  } finally {
    await handle?.close();
    await old?.close();
    // JSON left unread still pins its document.
    for (const part of parts) part.json?.release();
  }
  const ref = { segment, seq, sha256: sha };
  await installSnapshot(dir, ref, async () => {
    await rename(temp, join(dir, SNAPSHOT_FILE));
    const folder = await open(dir, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  });
  return { ref, index, bytes };
}

/** Hands bytes [start, end) of `file` to `use`, read WRITE_BYTES at a time. */
async function copyRange(file: FileHandle, start: number, end: number, use: (piece: Buffer) => Promise<void>): Promise<void> {
  for (let at = start; at < end; ) {
    const piece = Buffer.allocUnsafe(Math.min(WRITE_BYTES, end - at));
    const { bytesRead } = await file.read(piece, 0, piece.length, at);
    if (bytesRead === 0) throw new Error(`the snapshot on disk ends at byte ${at}, before the entry it should hold`);
    await use(bytesRead === piece.length ? piece : piece.subarray(0, bytesRead));
    at += bytesRead;
  }
}
