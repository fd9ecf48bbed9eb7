import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startHubProcess } from './helpers/process.ts';
import { tempDir } from './helpers/hub.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The first ```ts block after the heading `## Quick start` in README.md. */
function quickStart(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README has no quick start code block');
  return match[1]!;
}

describe('README', () => {
  it('shows the two commands and a quick start of at most 15 lines that runs against a hub', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toContain('npm install');
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
    const code = quickStart();
    expect(code.trim().split('\n').length).toBeLessThanOrEqual(15);

    const dataDir = tempDir();
    const hub = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    const file = join(root, `quickstart-test-${process.pid}.ts`);
    writeFileSync(file, code);
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
        cwd: root,
        env: { ...process.env, SWITCHBOARD_URL: hub.url, SWITCHBOARD_TOKENS: join(dataDir, 'tokens.json') },
      });
      expect(stdout).toContain("status: 'in_progress'");
      expect(stdout).toContain('progress: 25');
    } finally {
      rmSync(file, { force: true });
    }
  });
});
