import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { breakStaleLock, processAlive } from '../store/lock.ts';
import { CliError } from './common.ts';

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code;

/**
 * Holds `<file>.lock` while this process reads, changes and writes `file`, so that two commands
 * changing it at once both count (else the later write drops the earlier's change: a token reported
 * created is lost, or a revoked one comes back). A lock left by a process that has ended is taken
 * over; one held longer than `waitMs` is refused. Resolves with the release.
 */
export async function lockFile(file: string, waitMs = 10_000): Promise<() => void> {
  const lock = `${file}.lock`;
  const deadline = performance.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rmSync(lock, { force: true });
    } catch (error) {
      // A folder where no lock can be made (the file alone is writable): change it unlocked, as before.
      if (['EACCES', 'EPERM', 'EROFS'].includes(codeOf(error) ?? '')) return () => undefined;
      if (codeOf(error) !== 'EEXIST') throw error;
    }
    let holder: string;
    try {
      holder = readFileSync(lock, 'utf8');
    } catch (error) {
      if (codeOf(error) === 'ENOENT') continue; // released meanwhile
      throw error;
    }
    // Empty: its holder is still writing its pid, so it is live.
    const pid = /^\d+$/.test(holder) ? Number(holder) : undefined;
    if (pid !== undefined && !processAlive(pid)) {
      breakStaleLock(lock, holder);
      continue;
    }
    if (performance.now() > deadline) throw new CliError(`${file} is being changed by another process${pid ? ` (pid ${pid})` : ''}; try again, or remove ${lock} if no such command runs`);
    await delay(10);
  }
}
