import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PREFIX = 'switchboard-cli-';
let bundled: string | undefined;

/** Whether the process `pid` still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the bundles of test processes that have ended: a vitest worker is stopped without its
 * 'exit' listeners running, so each cleans up after those before it.
 */
function removeOrphans(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(name.startsWith(PREFIX) ? name.slice(PREFIX.length).split('-')[0] : NaN);
    if (Number.isInteger(pid) && pid > 0 && !alive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/**
 * The path of server/cli.ts and everything it imports, bundled from the sources as they are now
 * into one ES module (bundle-cli.mjs), made at the first call in a test file. Node starts it in a
 * fraction of the time `--import tsx` takes to compile the ~80 modules at every spawn, and unlike
 * dist/ it is never older than the sources.
 */
export function bundledCli(): string {
  if (bundled) return bundled;
  removeOrphans();
  const outfile = join(mkdtempSync(join(tmpdir(), `${PREFIX}${process.pid}-`)), 'cli.mjs');
  execFileSync(process.execPath, [fileURLToPath(new URL('bundle-cli.mjs', import.meta.url)), outfile], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (bundled = outfile);
}
