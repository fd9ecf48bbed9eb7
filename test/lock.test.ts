import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { acquireLock, breakStaleLock, LOCK_FILE } from '../server/store/lock.ts';
import { tempDir } from './helpers/hub.ts';

/** A pid above Linux's pid_max: no process has it. */
const DEAD_PID = '99999999';
/** Whether this system shows process start times in /proc (Linux). */
const HAS_PROC = existsSync('/proc/self/stat');

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3]!;
}

/** A live process that is not a hub (a `sleep`), killed when the test ends. */
async function stranger(): Promise<number> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  onTestFinished(() => void child.kill('SIGKILL'));
  await once(child, 'spawn');
  return child.pid!;
}

describe('data directory lock', () => {
  it('takes over a lock left by a dead process, or half-written by an older hub, and releases it', () => {
    for (const left of [DEAD_PID, '']) {
      const dir = tempDir();
      writeFileSync(join(dir, LOCK_FILE), left);
      const release = acquireLock(dir);
      expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(HAS_PROC ? `${process.pid} ${startTime(process.pid)}` : String(process.pid));
      expect(readdirSync(dir)).toEqual([LOCK_FILE]);
      release();
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  it('refuses a directory whose lock a live process holds, and leaves that lock alone', () => {
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), String(process.ppid));
    expect(() => acquireLock(dir)).toThrow(new RegExp(`in use by another hub \\(pid ${process.ppid}\\)`));
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(String(process.ppid));
  });

  it.runIf(HAS_PROC)('takes over a lock whose pid a live stranger now has (another start time), and leaves the stranger running', async () => {
    const pid = await stranger();
    const dir = tempDir();
    // A hub that started before the sleep wrote this lock, died, and its pid came round to the sleep.
    writeFileSync(join(dir, LOCK_FILE), `${pid} ${Number(startTime(pid)) - 1}`);
    const release = acquireLock(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid} ${startTime(process.pid)}`);
    expect(existsSync(`/proc/${pid}`)).toBe(true);
    release();
  });

  it.runIf(HAS_PROC)('takes over a lock whose process exited and was never reaped (a zombie, as under an init that does not reap)', async () => {
    // The shell starts a child that exits at once, then becomes a sleep that never waits for it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
    onTestFinished(() => void parent.kill('SIGKILL'));
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const pid = Number(line.toString().trim());
    const state = () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
    while (state() !== 'Z') await new Promise((resolve) => setImmediate(resolve));
    const dir = tempDir();
    writeFileSync(join(dir, LOCK_FILE), `${pid} ${startTime(pid)}`);
    const release = acquireLock(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(`${process.pid} ${startTime(process.pid)}`);
    release();
  });

  it.runIf(HAS_PROC)('refuses a lock naming a live process with its own start time, and leaves that lock alone', async () => {
    const pid = await stranger();
    const dir = tempDir();
    const lock = `${pid} ${startTime(pid)}\n`;
    writeFileSync(join(dir, LOCK_FILE), lock);
    expect(() => acquireLock(dir)).toThrow(new RegExp(`in use by another hub \\(pid ${pid}\\)`));
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(lock);
  });

  it('breaking a stale lock removes it only if it is still the stale one', () => {
    const dir = tempDir();
    const file = join(dir, LOCK_FILE);
    writeFileSync(file, DEAD_PID);
    breakStaleLock(file, DEAD_PID);
    expect(readdirSync(dir)).toEqual([]);

    // Two hubs read the same stale lock; the first broke it and now holds the directory. The second,
    // breaking what it read, must leave the first's lock in place.
    writeFileSync(file, String(process.ppid));
    breakStaleLock(file, DEAD_PID);
    expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    expect(readFileSync(file, 'utf8')).toBe(String(process.ppid));

    // Already gone: nothing to do.
    const empty = tempDir();
    breakStaleLock(join(empty, LOCK_FILE), DEAD_PID);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('removes the drafts and set-aside locks of a process that died while locking, and keeps those of live ones', () => {
    const dir = tempDir();
    const dead = [`${LOCK_FILE}.new.${DEAD_PID}.0123456789ab`, `${LOCK_FILE}.stale.${DEAD_PID}.ba9876543210`];
    const live = `${LOCK_FILE}.new.${process.ppid}.abcdefabcdef`;
    for (const name of [...dead, live, 'journal.notes']) writeFileSync(join(dir, name), DEAD_PID);
    const release = acquireLock(dir);
    expect(readdirSync(dir).sort()).toEqual([LOCK_FILE, live, 'journal.notes'].sort());
    release();
  });

  it('refuses a second hub of this process that names the same directory by another path (a symbolic link)', () => {
    const dir = tempDir();
    const link = join(tempDir(), 'data');
    symlinkSync(dir, link);
    const release = acquireLock(dir);
    try {
      expect(() => acquireLock(link)).toThrow(/in use by another hub in this process/);
      expect(readdirSync(dir)).toEqual([LOCK_FILE]);
    } finally {
      release();
    }
    // Released, the directory is taken by either name.
    acquireLock(link)();
  });
});
