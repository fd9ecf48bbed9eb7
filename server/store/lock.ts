import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const LOCK_FILE = 'hub.lock';

/** Data directories held by hubs of this process (a pid check cannot tell them apart). */
const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory for this hub, or throws when another live hub holds it. A lock left
 * by a dead process, or by this process without a hub holding it now (a failed start, or a
 * restarted container where the pid came round again), is taken over. Creation is atomic
 * (O_EXCL); two hubs taking over the same stale lock at the same instant is not guarded against.
 */
export function acquireLock(dir: string): () => void {
  const key = resolve(dir);
  if (heldHere.has(key)) throw new Error(`data directory ${dir} is in use by another hub in this process`);
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(key);
      return () => {
        heldHere.delete(key);
        try {
          unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(`data directory ${dir} is in use by another hub (pid ${pid}); stop it, or remove ${file} if that process is not a hub`);
      }
      unlinkSync(file);
    }
  }
  throw new Error(`could not lock data directory ${dir}`);
}
