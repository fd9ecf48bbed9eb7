import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { io } from 'socket.io-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { HubError } from '../server/index.ts';
import { optionsFrom } from '../server/cli/start.ts';
import { CliError, getFromHub } from '../server/cli/common.ts';
import { hostAllowed, isLoopbackHost } from '../server/transport/allowed-hosts.ts';
import { connectControl } from '../client-sdk/index.ts';
import { connectError } from '../client-sdk/connect-error.ts';
import { rawGet, type RawReply } from './helpers/http.ts';
import { startHub, TOKENS } from './helpers/hub.ts';
import { logRecorder, LEVEL } from './helpers/log-recorder.ts';

/** A WebSocket handshake to socket.io with this Host: the status it was answered with (101 when upgraded). */
function websocketHandshake(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
  const req = request(`${url}/socket.io/?EIO=4&transport=websocket`, {
    headers: { host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
  });
  req.on('upgrade', (res, socket) => {
    socket.destroy();
    resolve(res.statusCode!);
  });
  req.on('response', (res) => {
    res.resume();
    resolve(res.statusCode!);
  });
  req.on('error', reject);
  req.end();
  });
}

/** What a hub answers with this Host: a route, the dashboard, a socket.io polling handshake, a WebSocket handshake. */
async function answers(url: string, host: string): Promise<{ route: RawReply; dashboard: number; polling: RawReply; websocket: number }> {
  const headers = { host };
  return {
    route: await rawGet(url, '/api/workflows', TOKENS.admin, headers),
    dashboard: (await rawGet(url, '/', undefined, headers)).status,
    polling: await rawGet(url, '/socket.io/?EIO=4&transport=polling', undefined, headers),
    websocket: await websocketHandshake(url, host),
  };
}

describe('allowedHosts (DNS rebinding)', () => {
  it('refuses a foreign Host on every route and socket.io handshake, naming it and the option, and logs it', async () => {
    const log = logRecorder('debug');
    const hub = await startHub({ logLevel: 'debug' }, { logger: log.logger });
    const refused = await answers(hub.url, `evil.example:${hub.port}`);
    expect(refused.route.status).toBe(403);
    const error = (JSON.parse(refused.route.body) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('FORBIDDEN');
    expect(error.message).toContain('"evil.example"');
    expect(error.message).toContain('allowedHosts');
    expect(refused.dashboard).toBe(403);
    expect(refused.polling.status).toBe(403);
    expect(refused.polling.body).toContain('allowedHosts');
    expect(refused.websocket).toBe(400);
    // Logged once at warn, then at debug: a page that retries does not flood the log.
    const entries = log.find('request refused: its Host is not among allowedHosts');
    expect(entries.map((entry) => entry.level)).toEqual([LEVEL.warn, LEVEL.debug, LEVEL.debug, LEVEL.debug]);
    expect(entries[0]!.host).toBe(`evil.example:${hub.port}`);
    // A socket.io client sent there is refused too, and nothing was counted against the address's logins.
    const socket = io(`${hub.url}/control`, { auth: { token: 'not-a-token' }, transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: { host: 'evil.example' } });
    onTestFinished(() => void socket.disconnect());
    const failure = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
    expect(failure.message).toBe('websocket error');
    // The SDK's words for that failure say what to do.
    expect(connectError(failure, 'http://evil.example:4700', 'control').message).toContain('--allowed-hosts evil.example');
    // A hub answers to an IP address whatever its allowedHosts: there, a 400 is another server's.
    expect(connectError(failure, 'http://127.0.0.1:4700', 'control').message).toContain('is not a Switchboard hub');
    expect(log.find('connection refused')).toEqual([]);
  });

  it('answers to loopback names and IP addresses, and the SDK connects by URL', async () => {
    const hub = await startHub();
    for (const host of [`localhost:${hub.port}`, 'LOCALHOST', 'app.localhost', `127.0.0.1:${hub.port}`, `[::1]:${hub.port}`, '10.1.2.3', 'localhost.']) {
      const got = await answers(hub.url, host);
      expect([got.route.status, got.dashboard, got.polling.status, got.websocket], host).toEqual([200, 200, 200, 101]);
    }
    const client = await connectControl({ url: hub.url, token: TOKENS.admin });
    onTestFinished(() => client.close());
    expect(await client.listWorkflows()).toMatchObject({ items: [] });
  });

  it('answers to configured names, its advertiseUrl and this machine\'s name; "*" to any', async () => {
    const hub = await startHub({ allowedHosts: ['hub.example', '.corp.example'], advertiseUrl: 'http://hub-a.internal:4701' });
    for (const host of ['hub.example:80', 'HUB.Example.', 'corp.example', 'a.b.corp.example', 'hub-a.internal', hostname()]) {
      expect((await rawGet(hub.url, '/healthz', undefined, { host })).status, host).toBe(200);
    }
    for (const host of ['evil.example', 'xcorp.example', 'hub.example.evil', 'a b', '::1']) {
      expect((await rawGet(hub.url, '/healthz', undefined, { host })).status, host).toBe(403);
    }
    const open = await startHub({ allowedHosts: '*' });
    const got = await answers(open.url, 'evil.example');
    expect([got.route.status, got.dashboard, got.polling.status, got.websocket]).toEqual([200, 200, 200, 101]);
  });

  it('checks by default only a hub on a loopback address: one on a shared server (or another address) answers to any name', async () => {
    expect(['127.0.0.1', '127.8.0.1', '::1', '[::1]', 'localhost', 'hub.localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.20', 'hub.example'].some(isLoopbackHost)).toBe(false);
    const app = createServer((req, res) => hub.handle(req, res));
    const hub = await startHub({}, { server: app });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    onTestFinished(() => void app.close());
    const url = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    expect((await rawGet(url, '/healthz', undefined, { host: 'hub.corp.example' })).status).toBe(200);
  });

  it('answers a request without a Host header (HTTP/1.0): no browser sends one', async () => {
    const hub = await startHub();
    const socket = connect(hub.port, '127.0.0.1');
    onTestFinished(() => void socket.destroy());
    // Not half-closed: an HTTP/1.0 server closes the connection once it has answered.
    socket.write('GET /healthz HTTP/1.0\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await once(socket, 'close');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("guards an embedded hub's routes on a shared server, not the application's own", async () => {
    const app = createServer((req, res) => (req.url === '/app' ? res.end('app') : hub.handle(req, res)));
    // Asked for: on a shared server the hub cannot know whether it is reached over loopback alone.
    const hub = await startHub({ allowedHosts: [] }, { server: app });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    onTestFinished(() => void app.close());
    const url = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    const headers = { host: 'evil.example' };
    expect((await rawGet(url, '/app', undefined, headers)).status).toBe(200);
    expect((await rawGet(url, '/healthz', undefined, headers)).status).toBe(403);
    expect((await rawGet(url, '/socket.io/?EIO=4&transport=polling', undefined, headers)).status).toBe(403);
    expect((await rawGet(url, '/healthz', undefined, { host: 'localhost' })).status).toBe(200);
  });

  it("has the CLI say a refused Host is no refused token", async () => {
    // The application's server rewrites the Host, as a proxy passing on the name a client used would.
    const app = createServer((req, res) => {
      req.headers.host = 'hub.example';
      hub.handle(req, res);
    });
    const hub = await startHub({ allowedHosts: [] }, { server: app });
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    onTestFinished(() => void app.close());
    const url = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    const refusal = await getFromHub({ url, token: TOKENS.admin }, '/healthz').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(CliError);
    expect((refusal as CliError).message).toMatch(/^the hub at http:\/\/127\.0\.0\.1:\d+ refused the request: this hub does not answer to the host name "hub\.example"/);
    expect((refusal as CliError).message).not.toContain('token');
  });

  it('refuses an entry with a port or scheme, or a name not in a list, naming the option', async () => {
    for (const allowedHosts of [['hub.example:4700'], ['http://hub.example'], [''], 'hub.example' as '*']) {
      const refusal = await startHub({ allowedHosts }).catch((error: unknown) => error);
      expect(refusal).toBeInstanceOf(HubError);
      expect((refusal as HubError).message).toMatch(/^invalid hub options: allowedHosts(\[\d+\])?: must be a (host name without scheme or port|list of host names)/);
    }
  });

  it('takes --allowed-hosts and SWITCHBOARD_ALLOWED_HOSTS as a comma-separated list, or *', () => {
    expect(optionsFrom(['--allowed-hosts', 'a.example, .b.example'], {})?.allowedHosts).toEqual(['a.example', '.b.example']);
    expect(optionsFrom(['--allowed-hosts', '*'], {})?.allowedHosts).toBe('*');
    expect(optionsFrom([], { SWITCHBOARD_ALLOWED_HOSTS: 'c.example' })?.allowedHosts).toEqual(['c.example']);
    expect(optionsFrom(['--allowed-hosts', 'a.example'], { SWITCHBOARD_ALLOWED_HOSTS: 'c.example' })?.allowedHosts).toEqual(['a.example']);
    expect(() => optionsFrom(['--allowed-hosts', ''], {})).toThrow(/--allowed-hosts given an empty value/);
  });

  it('reads Host headers as browsers send them', () => {
    const passes = hostAllowed([], []);
    expect(passes(undefined)).toBe(true);
    expect(['127.0.0.1:80', '[2001:db8::1]:443', 'x.localhost:1'].every(passes)).toBe(true);
    expect(['evil.example', '[evil]:80', 'localhost.evil.example', '127.0.0.1.evil.example'].some(passes)).toBe(false);
  });
});
