import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../../server/store/lock.ts';

/** The prefix of every directory the PostgreSQL harness makes under os.tmpdir(). */
export const DIRECTORY_PREFIX = 'switchboard-pg-';
const OWNER_FILE = 'owner.pid';

/** The harness directories this process owns; each may hold a running server's `data/`. */
const owned = new Set<string>();
let hooked = false;

/**
 * Records `dir` as this process's, to stop and remove if the process ends first. Writes the owner's
 * pid into it so a later run can sweep it up after a SIGKILL, when no handler runs.
 */
export function own(dir: string): void {
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  owned.add(dir);
  hookExit();
}

/** Forgets `dir`: the caller has stopped and removed it. */
export function disown(dir: string): void {
  owned.delete(dir);
}

/**
 * Stops every server this process still owns, then removes their directories. Vitest SIGKILLs a fork
 * 500 ms after its SIGTERM, so every server gets its signal before the slow part, the removals.
 */
function cleanUp(): void {
  for (const dir of owned) quitPostmaster(join(dir, 'data'));
  for (const dir of owned) remove(dir);
  owned.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanUp);
  // Vitest ends its forks with SIGTERM, whose default action skips 'exit': clean up, then die of the signal as before.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Sends SIGQUIT (what `pg_ctl -m immediate stop` sends) to the postmaster of `dataDir`, if one runs
 * there: synchronous and without a child process, so it fits an exit handler.
 */
function quitPostmaster(dataDir: string): void {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    // The pid file outlives a crashed server and its pid may be reused: signal only a postgres on this dir.
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (command.includes(dataDir)) process.kill(pid, 'SIGQUIT');
  } catch {
    // No pid file or no such process: nothing runs there.
  }
}

/** Removes `dir`, its owner file last, so a removal cut short is still swept by a later run. */
function remove(dir: string): void {
  try {
    for (const name of readdirSync(dir)) if (name !== OWNER_FILE) rmSync(join(dir, name), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Best effort while exiting; a later run's sweep retries.
  }
}

/** Stops and removes harness directories whose owning process is gone (SIGKILLed, so no handler ran). */
export function sweepOrphans(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIRECTORY_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
    } catch {
      continue; // No owner file yet (its owner is setting it up), or another user's: not ours to sweep.
    }
    if (!Number.isInteger(owner) || owner <= 0 || processAlive(owner)) continue;
    quitPostmaster(join(dir, 'data'));
    remove(dir);
  }
}

