import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HubError } from '../shared/errors.ts';
import type { Observation } from './domain/data/inventory.ts';
import type { HubDirectory } from './hub-directory.ts';
import { realLocation } from './real-location.ts';

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
    private readonly hub: HubDirectory | undefined,
  ) {}

  /**
   * Resolves the roots once (a root that does not exist yet is kept as written). `hub` is the
   * hub's own data directory: its files are never read, whatever the roots and whatever name
   * reaches them; only its `workflows/` folder (default report and output location) is.
   */
  static async open(roots: readonly string[], hub?: HubDirectory): Promise<DataFiles> {
    const real = (path: string) => realpath(resolve(path)).catch(() => resolve(path));
    const resolved = await Promise.all(roots.map(real));
    return new DataFiles([...new Set(resolved)], hub);
  }

  private allowed(real: string): boolean {
    const inside = (root: string) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
    if (this.hub?.owns(real)) return false;
    return this.roots.some(inside);
  }

  /** The absolute local path a spec names (`file://` URIs included), relative paths against the working directory. */
  localPath(path: string): string {
    if (!path.toLowerCase().startsWith('file://')) return resolve(path);
    try {
      return fileURLToPath(path);
    } catch (error) {
      // The schema refuses these URIs (a host, %2F); a path recorded before it did is still the caller's error.
      throw new HubError('VALIDATION', `${path} does not name a local file (${(error as Error).message})`);
    }
  }

  /**
   * Looks at a local file: FORBIDDEN outside the roots or when it is one of the hub's files (a hard
   * link to one included); a missing file is `exists: false` (or NOT_FOUND when `requireExists`);
   * a directory exists without size or checksum; anything else that is not a regular file is
   * VALIDATION.
   */
  async observe(path: string, { requireExists = false }: { requireExists?: boolean } = {}): Promise<Observation> {
    const absolute = this.localPath(path);
    let real: string;
    try {
      real = await realLocation(absolute);
    } catch (error) {
      // Unresolvable outside the roots (a directory it may not enter, a symlink loop): refused as any path there, saying nothing of what is on disk.
      if (error instanceof HubError && !this.allowed(absolute)) throw new HubError('FORBIDDEN', `${path} is outside the hub's data roots; nothing was read`);
      throw error;
    }
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
      const stats = await handle.stat({ bigint: true });
      if (stats.isDirectory()) return { exists: true, size: null, checksum: null };
      if (!stats.isFile()) throw new HubError('VALIDATION', `${path} is not a regular file or directory`);
      if (await this.hub?.holds(stats)) throw new HubError('FORBIDDEN', `${path} is one of the hub's own files; nothing was read`);
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
}
