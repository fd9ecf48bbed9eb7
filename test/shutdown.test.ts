import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { control, startHub, tempDir } from './helpers/hub.ts';

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
});
