import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { TextFile } from 'lowdb/node';

/**
 * Replaces `dir/name` with `text` atomically (lowdb writes a temporary file and renames it), then
 * flushes the file and its directory: what it replaces may be deleted right after, so it must not
 * live only in the page cache.
 */
export async function syncedWrite(dir: string, name: string, text: string): Promise<void> {
  const path = join(dir, name);
  await new TextFile(path).write(text);
  for (const target of [path, dir]) {
    const handle = await open(target, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}
