import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubError } from '../shared/errors.ts';
import type { Observation } from './domain/inventory.ts';

// O_NONBLOCK: opening a FIFO must not hang; O_NOFOLLOW: the last component was resolved already.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * The hub's view of local data files. Paths are not trusted: each is resolved through realpath
 * (so `..` and symlinks cannot escape) and must lie inside one of the roots before anything is
 * read. Hashing streams the file, so a large file never blocks the event loop or the hub's mutex.
 */
export class DataFiles {
  private constructor(
    private readonly roots: readonly string[],
    private readonly hubDir: string | undefined,
  ) {}

  /**
   * Resolves the roots once (a root that does not exist yet is kept as written). `hubDir` is the
   * hub's own data directory: its journal, snapshot and tokens are never read, whatever the roots;
   * only its `workflows/` folder (default report and output location) is.
   */
  static async open(roots: readonly string[], hubDir?: string): Promise<DataFiles> {
    const real = (path: string) => realpath(resolve(path)).catch(() => resolve(path));
    const resolved = await Promise.all(roots.map(real));
    return new DataFiles([...new Set(resolved)], hubDir === undefined ? undefined : await real(hubDir));
  }

  private allowed(real: string): boolean {
    const inside = (root: string) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
    if (this.hubDir && inside(this.hubDir) && !inside(join(this.hubDir, 'workflows'))) return false;
    return this.roots.some(inside);
  }

  /** The absolute local path a spec names (`file://` URIs included), relative paths against the working directory. */
  localPath(path: string): string {
    return path.toLowerCase().startsWith('file://') ? fileURLToPath(path) : resolve(path);
  }

  /**
   * Looks at a local file: FORBIDDEN outside the roots; a missing file is `exists: false` (or
   * NOT_FOUND when `requireExists`); a directory exists without size or checksum; anything else
   * that is not a regular file is VALIDATION.
   */
  async observe(path: string, requireExists: boolean): Promise<Observation> {
    const absolute = this.localPath(path);
    const real = await this.realLocation(absolute);
    if (!this.allowed(real)) {
      throw new HubError('FORBIDDEN', `${path} is outside the hub's data roots; nothing was read`);
    }
    let handle;
    try {
      handle = await open(real, OPEN_FLAGS);
      // A directory on the way may have been swapped for a symlink since realpath: check what was
      // actually opened (Linux names it in /proc; elsewhere the check above stands alone).
      const opened = await realpath(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
      if (opened !== undefined && !this.allowed(opened)) {
        await handle.close();
        throw new HubError('FORBIDDEN', `${path} is outside the hub's data roots; nothing was read`);
      }
    } catch (error) {
      if (error instanceof HubError) throw error;
      const code = errnoOf(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (requireExists) throw new HubError('NOT_FOUND', `${path} does not exist`);
        return { exists: false, size: null, checksum: null };
      }
      if (code === 'EISDIR') return { exists: true, size: null, checksum: null };
      throw new HubError('VALIDATION', `${path} cannot be read (${code ?? 'error'})`);
    }
    try {
      const stats = await handle.stat();
      if (stats.isDirectory()) return { exists: true, size: null, checksum: null };
      if (!stats.isFile()) throw new HubError('VALIDATION', `${path} is not a regular file or directory`);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of handle.createReadStream({ autoClose: false, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
      }
      return { exists: true, size, checksum: hash.digest('hex') };
    } catch (error) {
      if (error instanceof HubError) throw error;
      throw new HubError('VALIDATION', `${path} cannot be read (${errnoOf(error) ?? 'error'})`);
    } finally {
      await handle.close();
    }
  }

  /** realpath of the path, or of its nearest existing ancestor joined with the rest (for missing files). */
  private async realLocation(absolute: string): Promise<string> {
    let existing = absolute;
    for (;;) {
      try {
        const real = await realpath(existing);
        const rest = relative(existing, absolute);
        return rest && !isAbsolute(rest) ? join(real, rest) : real;
      } catch (error) {
        const code = errnoOf(error);
        const parent = dirname(existing);
        if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === existing) throw new HubError('VALIDATION', `${absolute} cannot be resolved (${code ?? 'error'})`);
        existing = parent;
      }
    }
  }
}
