import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { CLI, startHubProcess } from './helpers/process.ts';
import { tempDir } from './helpers/hub.ts';

describe('switchboard CLI', () => {
  it('starts a hub that prints its URL and generated tokens, and flushes state on SIGTERM', async () => {
    const dataDir = tempDir();
    const first = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    const tokens = JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as Array<{ role: string; token: string }>;
    const admin = tokens.find((t) => t.role === 'admin')!.token;
    expect(first.output()).toContain(admin);
    expect(tokens.map((t) => t.role).sort()).toEqual(['admin', 'agent', 'monitor']);

    const client = await connectControl({ url: first.url, token: admin });
    const wf = await client.createWorkflow({ userQuery: 'from the CLI' });
    await wf.start();
    await wf.updateProgress('loading', 80);
    client.close();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // Environment variables work as well as flags.
    const second = await startHubProcess([], { SWITCHBOARD_PORT: '0', SWITCHBOARD_DATA_DIR: dataDir });
    expect(second.output()).toContain(admin);
    const again = await connectControl({ url: second.url, token: admin });
    expect(await again.workflow(wf.id).get()).toMatchObject({ status: 'in_progress', progress: 80 });
    again.close();
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('fails with a clear message and a non-zero status on bad arguments', () => {
    const badPort = spawnSync(process.execPath, [CLI, 'start', '--port', 'abc'], { encoding: 'utf8' });
    expect(badPort.status).not.toBe(0);
    expect(badPort.stderr).toContain('--port must be a whole number');
    const unknown = spawnSync(process.execPath, [CLI, 'launch'], { encoding: 'utf8' });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain('unknown command "launch"');
  });
});
