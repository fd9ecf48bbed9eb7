import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** The replacement under way of each file: replacements of one file land in the order they were asked for. */
const replacing = new Map<string, Promise<void>>();

/**
 * Replaces `dir/name` with `text` atomically and durably: written to a temporary file, flushed,
 * renamed into place, then the directory flushed. Flushed before the rename, or a power loss could
 * keep the rename and not the text (XFS, ext4 without auto_da_alloc), leaving an empty file; and
 * what it replaces may be deleted right after, so it must not live only in the page cache.
 */
export function syncedWrite(dir: string, name: string, text: string): Promise<void> {
  const path = join(dir, name);
  const before = replacing.get(path);
  const write = before ? before.catch(() => undefined).then(() => replace(dir, name, text)) : replace(dir, name, text);
  replacing.set(path, write);
  const forget = () => {
    if (replacing.get(path) === write) replacing.delete(path);
  };
  write.then(forget, forget);
  return write;
}

function replace(dir: string, name: string, text: string): Promise<void> {
  return replaceDurably(dir, name, (handle) => handle.writeFile(text));
}

/** Where a replacement of `dir/name` is written before it is renamed into place. */
export function temporaryPath(dir: string, name: string): string {
  return join(dir, `.${name}.tmp`);
}

/**
 * Puts `dir/name` in place atomically and durably with what `fill` writes into a temporary file,
 * which is flushed, renamed into place, then the directory flushed; resolves with what `fill` does.
 * A failure before the rename leaves the file as it was, and no temporary one; one after it (flushing
 * the directory) leaves the new file in place, perhaps not yet durable. `mode`: the new file's.
 */
export async function replaceDurably<T>(dir: string, name: string, fill: (handle: FileHandle) => Promise<T>, mode?: number): Promise<T> {
  const temporary = temporaryPath(dir, name);
  // A temporary file left by a crash may be there with another mode: it goes first, so the new one is created with `mode`.
  if (mode !== undefined) await unlink(temporary).catch(() => undefined);
  const handle = await open(temporary, 'w', mode);
  let result: T;
  try {
    result = await fill(handle);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temporary, join(dir, name));
  } catch (error) {
    // Nothing would ever remove it: an archive's temporary files are not its `.json` ones.
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dir);
  return result;
}

/** Flushes a directory, so that a file renamed into it (or out of it) stays so after a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
