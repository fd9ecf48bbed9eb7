import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock, breakStaleLock, LOCK_FILE } from '../server/store/lock.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'switchboard-lock-'));
/** A pid above Linux's pid_max: no process has it. */
const DEAD_PID = '99999999';

describe('data directory lock', () => {
  it('takes over a lock left by a dead process, or half-written by an older hub, and releases it', () => {
    for (const left of [DEAD_PID, '']) {
      const dir = tempDir();
      writeFileSync(join(dir, LOCK_FILE), left);
      const release = acquireLock(dir);
      expect(readFileSync(join(dir, LOCK_FILE), 'utf8')).toBe(String(process.pid));
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
});
