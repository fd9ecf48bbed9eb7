import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { reload } from '../server/cli/reload.ts';
import { GRANTS, tempDir } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { startHubProcess } from './helpers/process.ts';

// A system without /proc (macOS, the BSDs): reading /proc/PID/cmdline fails there, as ENOENT.
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((path: unknown, ...rest: unknown[]) => {
    if (typeof path === 'string' && path.startsWith('/proc/')) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return (fs.readFileSync as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
});

const missing = postgresSkipReason();
const postgres = postgresForFile();

describe.skipIf(missing !== undefined)('reload --pid where /proc is missing (macOS, the BSDs)', () => {
  it('reloads a cluster node started by `switchboard start` given its banner pid (it keeps no hub.lock for --data-dir to use)', async () => {
    const url = await postgres().newDatabase();
    // The node takes its tokens from a file, which only a SIGHUP makes it read again.
    const tokensFile = join(tempDir(), 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(GRANTS));
    const dataDir = tempDir();
    const node = await startHubProcess(['--port', '0', '--data-dir', dataDir, '--postgres', url, '--node-id', 'node-a', '--tokens', tokensFile]);
    const pid = node.child.pid!;
    expect(existsSync(join(dataDir, 'hub.lock'))).toBe(false);

    const outcome = await reload(['--pid', String(pid)]).then(() => 'sent', (error: Error) => error.message);

    // ps tells what /proc cannot; --data-dir cannot name a cluster node (it keeps no hub.lock).
    expect(outcome).toBe('sent');
    await node.waitForOutput(/SIGHUP: \d+ tokens in force/);
  }, 60_000);
});
