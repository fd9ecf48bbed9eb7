import { createServer, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectAgent, connectControl, connectMonitor } from '../client-sdk/index.ts';
import { hubErrorOf } from './helpers/errors.ts';
import { startHub, TOKENS } from './helpers/hub.ts';
import { untilAnswer } from './helpers/wait.ts';
import { freePort } from './helpers/ports.ts';

describe('connecting with the SDK', () => {
  it('names the URL, ECONNREFUSED and how to start the hub when nothing listens, at the first refusal', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    // A connect timeout far past the test timeout: only giving up at the first refusal can settle this.
    const error = await hubErrorOf(connectControl({ url, token: TOKENS.admin, connectTimeoutMs: 600_000 }));
    expect(error.code).toBe('DISCONNECTED');
    expect(error.message).toContain(url);
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('npx switchboard start');
  });

  it('names the host that does not resolve', async () => {
    const error = await hubErrorOf(connectMonitor({ url: 'http://no-such-host.invalid:4700', token: TOKENS.monitor, connectTimeoutMs: 600_000 }));
    expect(error.code).toBe('DISCONNECTED');
    expect(error.message).toContain('http://no-such-host.invalid:4700');
    expect(error.message).toMatch(/ENOTFOUND|EAI_AGAIN/);
    expect(error.message).toContain('does not resolve');
  });

  it('says the hub speaks plain http when https:// meets it', async () => {
    const hub = await startHub();
    const url = hub.url.replace('http://', 'https://');
    const error = await hubErrorOf(connectControl({ url, token: TOKENS.admin, connectTimeoutMs: 600_000 }));
    expect(error.code).toBe('DISCONNECTED');
    expect(error.message).toContain(url);
    expect(error.message).toMatch(/EPROTO|SSL/);
    expect(error.message).toContain('use http://');
  });

  it('tells a web server that is not a hub from a proxy whose hub behind it is down', async () => {
    for (const [status, said] of [
      [404, 'is not a Switchboard hub'],
      [502, 'is the hub behind it running?'],
    ] as const) {
      // Answers every request and websocket handshake with `status`, as a web server or a gateway would.
      const server = createServer((_req, res) => res.writeHead(status).end());
      server.on('upgrade', (_req, socket: Socket) => socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: 0\r\n\r\n`));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      onTestFinished(() => void server.close());
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const error = await hubErrorOf(connectControl({ url, token: TOKENS.admin, connectTimeoutMs: 600_000 }));
      expect([status, error.code, error.message.includes(said)]).toEqual([status, 'DISCONNECTED', true]);
    }
  });

  it('refuses a URL without a scheme, naming it', async () => {
    for (const url of ['localhost:4700', '127.0.0.1:4700']) {
      const error = await hubErrorOf(connectControl({ url, token: TOKENS.admin }));
      expect(error.code).toBe('VALIDATION');
      expect(error.message).toContain(`"${url}"`);
      expect(error.message).toContain(`http://${url}`);
      expect(error.issues).toEqual([{ path: ['url'], message: error.message }]);
    }
  });

  it('refuses a URL with a path the hub does not serve instead of reading it as a socket.io namespace', async () => {
    const hub = await startHub();
    const error = await hubErrorOf(connectControl({ url: `${hub.url}/foo`, token: TOKENS.admin }));
    expect(error.code).toBe('VALIDATION');
    expect(error.message).toContain(`"${hub.url}/foo"`);
    expect(error.message).toContain('/foo');
    expect(error.message).toContain(hub.url);
    // A trailing slash is the root, and is fine.
    await (await connectControl({ url: `${hub.url}/`, token: TOKENS.admin })).close();
  });

  it('says where tokens come from when the hub refuses one', async () => {
    const hub = await startHub();
    const error = await hubErrorOf(connectAgent({ url: hub.url, token: 'not-a-real-token', agentId: 'a', agentType: 'w' }));
    expect(error.code).toBe('UNAUTHENTICATED');
    expect(error.message).toContain(hub.url);
    expect(error.message).toContain('switchboard tokens list');
    expect(error.message).toContain('<dataDir>/tokens.json');
  });

  it('says which role a client needs when the token has another', async () => {
    const hub = await startHub();
    const error = await hubErrorOf(connectControl({ url: hub.url, token: TOKENS.agent }));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toContain('connectControl takes an admin token');
  });

  it('closes the connection of an agent whose registration is refused, so nothing keeps the process or the hub busy', async () => {
    const hub = await startHub();
    const error = await hubErrorOf(connectAgent({ url: hub.url, token: TOKENS.agent, agentId: 'a', agentType: 'w', maxConcurrentTasks: 5000 }));
    expect(error.code).toBe('VALIDATION');
    // The hub's metrics push nothing: asked until the agent's socket is gone.
    const agents = await untilAnswer(async () => {
      const text = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } })).text();
      const count = Number(/^switchboard_connections\{namespace="agent"\} (\d+)$/m.exec(text)?.[1]);
      return count === 0 ? count : undefined;
    }, 5000);
    expect(agents).toBe(0);
  });
});
