import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

let bundled: string | undefined;

/**
 * The path of server/cli.ts and everything it imports, bundled from the sources as they are now
 * into one ES module (bundle-cli.mjs), made at the first call of a test file and removed when it
 * ends. Node starts it in a fraction of the time `--import tsx` takes to compile the ~80 modules
 * at every spawn, and unlike dist/ it is never older than the sources.
 */
export function bundledCli(): string {
  if (bundled) return bundled;
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const outfile = join(dir, 'cli.mjs');
  execFileSync(process.execPath, [fileURLToPath(new URL('bundle-cli.mjs', import.meta.url)), outfile], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (bundled = outfile);
}
