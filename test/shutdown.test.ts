import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';
import { startHubProcess } from './helpers/process.ts';

describe('stopping a hub', () => {
  it('stops with its final snapshot although an HTTP client never finishes its request, and cuts that client off', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    await (await control(hub)).createWorkflow({ id: 'kept', userQuery: 'acknowledged before the stop' });
    // Half a request: the server waits for the rest of its headers (Node's headersTimeout is a minute).
    const stuck = connect(hub.port, '127.0.0.1');
    onTestFinished(() => void stuck.destroy());
    await once(stuck, 'connect');
    stuck.write('GET /healthz HTTP/1.1\r\nHost: hub\r\n');
    // Cut off: a reset, which is the point.
    stuck.on('error', () => undefined);
    const cut = new Promise((resolve) => stuck.once('close', resolve));
    await hub.close();
    await cut;
    expect(readFileSync(join(dataDir, 'snapshot.json'), 'utf8')).toContain('"kept"');
  });

  it('stops at once on a second SIGTERM while the shutdown is stuck', async () => {
    const dir = tempDir();
    // A close that never finishes, as on a hung disk: the server's close never calls back, and something still keeps the process alive.
    const preload = join(dir, 'stuck-close.mjs');
    writeFileSync(preload, `import http from 'node:http'; const close = http.Server.prototype.close; http.Server.prototype.close = function () { setInterval(() => undefined, 60_000); return close.call(this); };`);
    const dataDir = join(dir, 'data');
    const hub = await startHubProcess(['--port', '0', '--data-dir', dataDir], { NODE_OPTIONS: `--import=${preload}` });
    const admin = (JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as Array<{ role: string; token: string }>).find((t) => t.role === 'admin')!.token;
    const client = await connectControl({ url: hub.url, token: admin });
    await client.createWorkflow({ id: 'kept', userQuery: 'acknowledged before the stop' });
    client.close();
    hub.child.kill('SIGTERM');
    await hub.waitForOutput(/SIGTERM: shutting down/);
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(1);
    expect(hub.output()).toContain('SIGTERM: stopping at once, the shutdown had not finished');
    // What was acknowledged is in the journal: the next start has it.
    const again = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    const reader = await connectControl({ url: again.url, token: admin });
    onTestFinished(() => reader.close());
    expect(await reader.workflow('kept').get()).toMatchObject({ id: 'kept' });
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });

  it('says at the next start that the last run did not stop cleanly after kill -9, and not after a clean stop', async () => {
    const dataDir = tempDir();
    const crashed = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    crashed.child.kill('SIGKILL');
    await crashed.exited;
    const after = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    expect(after.output()).toMatch(new RegExp(`"level":40.*locked by pid ${crashed.child.pid}, which no longer runs: its last hub did not stop cleanly`));
    after.child.kill('SIGTERM');
    expect(await after.exited).toBe(0);
    const clean = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    expect(clean.output()).not.toContain('did not stop cleanly');
    clean.child.kill('SIGTERM');
    expect(await clean.exited).toBe(0);
  });
});
