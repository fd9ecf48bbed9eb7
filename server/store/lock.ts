import { randomBytes } from 'node:crypto';
import { linkSync, readdirSync, readFileSync, realpathSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'hub.lock';

/** Data directories held by hubs of this process (a pid check cannot tell them apart). */
const heldHere = new Set<string>();

/**
 * When process `pid` started (field 22 of /proc/PID/stat, clock ticks since boot), or undefined
 * where /proc cannot say (not Linux, or the process is gone). With the pid it names one process
 * for the machine's uptime: a pid reused by another process comes with another start time.
 */
function startTimeOf(pid: number): string | undefined {
  const start = statFields(pid)?.[19];
  return start && /^\d+$/.test(start) ? start : undefined;
}

/** The fields of /proc/PID/stat from the third (the state) on, or undefined where /proc does not show the pid. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command name, in parentheses) may hold spaces and parentheses: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** What this process writes in its lock: its pid, and its start time where known. */
function ownLock(): string {
  return ownProcess(' ');
}

/** This process as `pid`, or `pid<sep>start` where /proc gives its start time: one process, not a pid a stranger may reuse. */
export function ownProcess(separator: string): string {
  const start = startTimeOf(process.pid);
  return start === undefined ? String(process.pid) : `${process.pid}${separator}${start}`;
}

/** The pid and start time a lock names (older hubs wrote the pid alone); undefined if it names none. */
function parseLock(holder: string): { pid: number; start: string | undefined } | undefined {
  const match = /^(\d+)(?:\s+(\d+))?$/.exec(holder.trim());
  const pid = Number(match?.[1]);
  return match && Number.isSafeInteger(pid) && pid > 0 ? { pid, start: match[2] } : undefined;
}

/**
 * Whether the process a lock names still runs: its pid is alive and, when the lock recorded a start
 * time and /proc shows the pid's, they match (else the pid was reused by a stranger).
 */
export function holderAlive(holder: { pid: number; start: string | undefined }): boolean {
  if (!processAlive(holder.pid)) return false;
  if (holder.start === undefined) return true;
  const now = startTimeOf(holder.pid);
  return now === undefined || now === holder.start;
}

/**
 * The pid of the live process holding a data directory's lock (what `switchboard reload` signals),
 * or undefined when there is no lock or the process it names has ended.
 */
export function lockHolder(dir: string): number | undefined {
  let holder: string;
  try {
    holder = readFileSync(join(dir, LOCK_FILE), 'utf8');
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  const owner = parseLock(holder);
  return owner && holderAlive(owner) ? owner.pid : undefined;
}

/** Whether a process with this pid runs (EPERM: it does, under another user); one that exited and was not reaped yet (a zombie) does not. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A hub killed with kill -9 stays a zombie until its parent reaps it, for good under a container's init that never does.
  const state = statFields(pid)?.[0];
  return state !== 'Z' && state !== 'X';
}

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** A file name beside `file` that no other hub will pick. */
const privateName = (file: string, tag: string) => `${file}.${tag}.${process.pid}.${randomBytes(6).toString('hex')}`;
/** A private name of the lock file (see privateName), with the pid of the process that made it. */
const PRIVATE_NAME = /^hub\.lock\.(?:new|stale)\.(\d+)\.[0-9a-f]{12}$/;

/**
 * Removes the private files of locking (a draft, a stale lock moved aside) that a process which
 * died in the middle of locking left behind. Those of live processes may be in use and are kept.
 */
function removeLeftovers(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number(PRIVATE_NAME.exec(name)?.[1]);
    if (!pid || processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
    } catch {
      // Removed by another hub meanwhile.
    }
  }
}

/**
 * Takes the data directory for this hub, or throws when another live hub holds it. A lock left
 * by a dead process, by a live one that is not its writer (the pid was reused: another start
 * time), or by this process without a hub holding it now (a failed start, or a restarted
 * container where the pid came round again), is taken over; `onStale` is told when another process's was.
 */
export function acquireLock(dir: string, onStale: (message: string) => void = () => undefined): () => void {
  // By its real path: the same directory named through a symbolic link must not pass for another one.
  const key = realpathSync(dir);
  if (heldHere.has(key)) throw new Error(`data directory ${dir} is in use by another hub in this process`);
  const file = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createLock(file)) {
      heldHere.add(key);
      removeLeftovers(dir);
      return () => {
        heldHere.delete(key);
        try {
          unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
    }
    let holder: string;
    try {
      holder = readFileSync(file, 'utf8');
    } catch (error) {
      if (codeOf(error) === 'ENOENT') continue; // released meanwhile: try again
      throw error;
    }
    const owner = parseLock(holder);
    if (owner && owner.pid !== process.pid && holderAlive(owner)) {
      throw new Error(`data directory ${dir} is in use by another hub (pid ${owner.pid}); stop it, or remove ${file} if that process is not a hub`);
    }
    // The one trace a crash leaves (kill -9, OOM, power loss): the operator learns the last run did not stop cleanly.
    if (holder.trim() !== ownLock()) onStale(`data directory ${dir} was locked by pid ${owner?.pid ?? '(unreadable lock)'}, which no longer runs: its last hub did not stop cleanly (a crash, kill -9, power loss); the lock is taken over and the journal replayed`);
    breakStaleLock(file, holder);
  }
  throw new Error(`could not lock data directory ${dir}`);
}

/**
 * Creates the lock file holding this process's pid and start time; false when it exists. The file is written
 * under a private name and linked into place, so nobody ever reads it empty (and takes a lock
 * being written for a stale one). Where the file system has no hard links, it is created in place.
 */
function createLock(file: string): boolean {
  const content = ownLock();
  const draft = privateName(file, 'new');
  writeFileSync(draft, content, { flag: 'wx' });
  try {
    linkSync(draft, file);
    return true;
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return false;
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(codeOf(error) ?? '')) throw error;
  } finally {
    unlinkSync(draft);
  }
  try {
    writeFileSync(file, content, { flag: 'wx' });
    return true;
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return false;
    throw error;
  }
}

/**
 * Removes the lock file if it still holds `stale`. It is first moved aside, which only one of
 * several hubs breaking the same lock can do; if what was moved is not the stale lock (another
 * hub broke it and took the directory meanwhile), it is put back. Only a third hub locking the
 * directory in the instant the lock is aside can still end with two holders.
 */
export function breakStaleLock(file: string, stale: string): void {
  const aside = privateName(file, 'stale');
  try {
    renameSync(file, aside);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return;
    throw error;
  }
  if (readFileSync(aside, 'utf8') === stale) return unlinkSync(aside);
  try {
    linkSync(aside, file);
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return unlinkSync(aside);
    // No hard links here: a rename puts it back too.
    return renameSync(aside, file);
  }
  unlinkSync(aside);
}
