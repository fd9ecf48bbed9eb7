import { once } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { createHub, type RunningHub } from '../server/index.ts';
import { GRANTS, tempDir, TOKENS } from './helpers/hub.ts';
import { rawGet } from './helpers/http.ts';

// The hub as an application embeds it: createHub's options, its lifecycle and a shared server.

const EVENTS = ['request', 'upgrade', 'close', 'listening'] as const;
const listenerCounts = (server: HttpServer) => Object.fromEntries(EVENTS.map((event) => [event, server.listenerCount(event)]));

afterEach(() => {
  vi.restoreAllMocks();
});

/** An application's server with its own route, handing the rest to `hub()`; listening on loopback, closed when the test ends. */
function appServer(hub: () => RunningHub | undefined): HttpServer {
  const server = createServer((req, res) => {
    if (req.url === '/app') return void res.end('from the app');
    const current = hub();
    if (current) return current.handle(req, res);
    res.writeHead(404).end('no hub');
  });
  onTestFinished(() => {
    server.close();
    server.closeAllConnections();
  });
  return server;
}

describe('a hub on a shared server', () => {
  it('gives the server back as it found it at close, so that the app still serves and a new hub can attach', async () => {
    const dataDir = tempDir();
    let hub: RunningHub | undefined;
    const server = appServer(() => hub);
    const before = listenerCounts(server);
    hub = await createHub({ dataDir, tokens: GRANTS, logLevel: 'silent' }, { server });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = await connectControl({ url, token: TOKENS.admin });
    const wf = await client.createWorkflow({ userQuery: 'shared server' });
    client.close();
    const closed = hub;
    await closed.close();

    // The app's server is the app's: still listening, its route served, socket.io's listeners gone.
    expect(server.listening).toBe(true);
    expect(listenerCounts(server)).toEqual(before);
    expect((await rawGet(url, '/app')).body).toBe('from the app');
    // The closed hub answers nothing: not socket.io's handshake, not its health or API (a load balancer must see it gone).
    expect((await rawGet(url, '/socket.io/?EIO=4&transport=polling')).status).toBe(503);
    expect((await rawGet(url, '/healthz')).status).toBe(503);
    expect((await rawGet(url, '/api/workflows', TOKENS.admin)).status).toBe(503);

    // The same server takes a new hub on the same data directory, whose clients reach it.
    hub = await createHub({ dataDir, tokens: GRANTS, logLevel: 'silent' }, { server });
    onTestFinished(() => hub!.close());
    const again = await connectControl({ url, token: TOKENS.admin });
    onTestFinished(() => again.close());
    expect((await again.listWorkflows()).items.map((w) => w.id)).toEqual([wf.id]);
    expect((await rawGet(url, '/app')).body).toBe('from the app');
  });
});
