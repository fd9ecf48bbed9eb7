/**
 * One archived workflow's file: a header line, a summary line, then the document (see
 * archive-lines.ts). Written from the document's chunks as they are produced, and read back a line
 * at a time, so that neither holds the event loop for more than a few milliseconds.
 */

import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { DamagedPart, readDocument } from './archive-lines.ts';
import { replaceDurably } from './synced-write.ts';

/** Bytes read from the file at a time: hashing them takes well under a millisecond. */
const READ_BYTES = 256 * 1024;
/** Stands for the document's SHA-256 in the header until it is known: the same length as the digest. */
const PENDING_SHA256 = '0'.repeat(64);

/**
 * Writes `dir/name` atomically from the document's chunks: the header line `header(sha256)` and
 * the summary line, then the chunks, hashed as they are written. The header is written first with a
 * placeholder and rewritten in place once the document's SHA-256 is known (a hex digest is as long
 * as the placeholder, so nothing moves); replaceDurably puts the file in place. Resolves with the
 * document's SHA-256.
 */
export function writeArchivedFile(dir: string, name: string, header: (sha256: string) => string, summary: string, document: AsyncIterable<Buffer>): Promise<string> {
  return replaceDurably(dir, name, async (handle) => {
    const pending = header(PENDING_SHA256);
    await writeAll(handle, Buffer.from(`${pending}\n${summary}\n`));
    const hash = createHash('sha256');
    for await (const bytes of document) {
      hash.update(bytes);
      await writeAll(handle, bytes);
    }
    const sha256 = hash.digest('hex');
    const final = Buffer.from(header(sha256));
    if (final.length !== Buffer.byteLength(pending)) throw new Error(`the header of ${name} changed length`);
    await writeAll(handle, final, 0);
    return sha256;
  });
}

/** Writes all of `bytes` at `position` (or where the file stands), however many writes that takes. */
async function writeAll(handle: FileHandle, bytes: Buffer, position: number | null = null): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position === null ? null : position + done);
    done += bytesWritten;
  }
}

/**
 * Reads the document of a file written by writeArchivedFile, a slice of a few milliseconds per
 * turn (see readDocument). Throws DamagedPart when a line is not one of a document or the file
 * ends within a line.
 */
export async function readArchivedDocument(path: string): Promise<{ workflow: Workflow; sha256: string }> {
  const handle = await open(path, 'r');
  try {
    return await readDocument(documentBytes(handle));
  } finally {
    await handle.close();
  }
}

/** The bytes of an archived file's document, a read at a time: what follows its header and summary lines. */
async function* documentBytes(handle: FileHandle): AsyncGenerator<Buffer> {
  let skip = 2;
  for (;;) {
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, null);
    if (bytesRead === 0) break;
    const read = buffer.subarray(0, bytesRead);
    let start = 0;
    while (skip > 0 && start < read.length) {
      const end = read.indexOf(10, start);
      // A header or summary line that goes on in the next read is skipped there.
      if (end === -1) start = read.length;
      else {
        start = end + 1;
        skip--;
      }
    }
    if (start < read.length) yield read.subarray(start);
  }
  if (skip > 0) throw new DamagedPart('it ends within a line');
}

/**
 * Reads the first `lines` lines of a file (the rest is never read): the header and summary of an
 * archived workflow without its document. Undefined when the file ends first.
 */
export async function readLines(path: string, lines: number): Promise<string[] | undefined> {
  const handle = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    let found = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) return undefined;
      const read = chunk.subarray(0, bytesRead);
      chunks.push(read);
      for (let at = read.indexOf(10); at !== -1; at = read.indexOf(10, at + 1)) {
        if (++found < lines) continue;
        return Buffer.concat(chunks).toString('utf8').split('\n', lines);
      }
    }
  } finally {
    await handle.close();
  }
}
