import type { BigIntStats } from 'node:fs';
import { lstat, readdir, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { HubError } from '../shared/errors.ts';
import { realLocation } from './real-location.ts';

/** The folder of the data directory that holds workflows' reports and outputs; the rest is the hub's. */
export const WORKFLOWS_FOLDER = 'workflows';

const inside = (path: string, folder: string) => path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);
const missing = (error: unknown) => ['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '');

/**
 * The hub's data directory. Everything in it but `workflows/` is the hub's own (journal segments,
 * snapshot, manifest, tokens, lock, and whatever a later version keeps there): never read for a
 * client, by whatever name it is reached, and never a place to write reports.
 */
export class HubDirectory {
  private constructor(readonly path: string) {}

  /** The directory, resolved once through realpath (kept as written while it does not exist). */
  static async open(dir: string): Promise<HubDirectory> {
    return new HubDirectory(await realpath(resolve(dir)).catch(() => resolve(dir)));
  }

  /** Whether a resolved path is the data directory itself or lies inside it outside `workflows/`. */
  owns(real: string): boolean {
    return inside(real, this.path) && !inside(real, join(this.path, WORKFLOWS_FOLDER));
  }

  /**
   * Whether an opened file is one of the hub's files: the same device and inode as a regular file
   * in the directory (outside `workflows/`) now, so a hard link elsewhere is caught, and so is a
   * segment created since the hub started. For a file reached by a path already found outside it.
   */
  async holds(file: BigIntStats): Promise<boolean> {
    // A file with one name was reached by that name, which the caller found outside the directory.
    if (file.nlink === 1n) return false;
    const self = await stat(this.path, { bigint: true }).catch((error: unknown) => (missing(error) ? undefined : Promise.reject(error)));
    // Hard links do not cross file systems.
    if (!self || self.dev !== file.dev) return false;
    return this.search(this.path, file);
  }

  /** Refuses (FORBIDDEN) a folder for reports that is the data directory or inside it outside `workflows/`. */
  async requireOutputFolder(folder: string): Promise<void> {
    if (this.owns(await realLocation(resolve(folder)))) {
      throw new HubError('FORBIDDEN', `${folder} is in the hub's data directory ${this.path}, where only ${WORKFLOWS_FOLDER}/ may hold reports`);
    }
  }

  private async search(folder: string, file: BigIntStats): Promise<boolean> {
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      if (missing(error)) return false; // removed meanwhile
      throw error;
    }
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (folder === this.path && entry.name === WORKFLOWS_FOLDER) continue;
      if (entry.isDirectory() && (await this.search(path, file))) return true;
      if (!entry.isFile()) continue;
      const stats = await lstat(path, { bigint: true }).catch((error: unknown) => (missing(error) ? undefined : Promise.reject(error)));
      if (stats && stats.dev === file.dev && stats.ino === file.ino) return true;
    }
    return false;
  }
}
