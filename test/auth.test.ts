import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { io } from 'socket.io-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectAgent, connectControl, connectMonitor } from '../client-sdk/index.ts';
import { codeOf, hubErrorOf } from './helpers/errors.ts';
import { rawGet } from './helpers/http.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { untilTrue } from './helpers/wait.ts';
import { agent, control, GRANTS, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';

/** Connects to /control with `token` and these headers: "connected", or the refusal's "CODE: message". */
function login(url: string, token: string, extraHeaders: Record<string, string>): Promise<string> {
  const socket = io(`${url}/control`, { auth: { token }, extraHeaders, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise<string>((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (error: Error & { data?: { code?: string } }) => resolve(error.data?.code ? `${error.data.code}: ${error.message}` : `no code: ${error.message}`));
  }).finally(() => socket.close());
}

describe('authentication', () => {
  it('refuses a control connection without a valid admin token', async () => {
    const hub = await startHub();
    expect(await codeOf(connectControl({ url: hub.url, token: 'wrong-token-value' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connectControl({ url: hub.url, token: '' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.monitor }))).toBe('FORBIDDEN');
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.admin }))).toBe('resolved');
  });

  it('throttles an address that presents unknown tokens, except for the tokens that logged in from it', async () => {
    const log = logRecorder();
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 } }, { logger: log.logger });
    await agent(hub, { agentId: 'beside', agentType: 'worker' });
    expect(await codeOf(connectControl({ url: hub.url, token: 'guess-one-token' }))).toBe('UNAUTHENTICATED');
    expect((await rawGet(hub.url, '/api/workflows', 'guess-two-token')).status).toBe(401);

    // Refused before the token is looked at: a right guess would be refused too, so it tells nothing.
    const refusal = await hubErrorOf(connectControl({ url: hub.url, token: TOKENS.admin }));
    expect(refusal.code).toBe('RATE_LIMITED');
    expect(refusal.message).toMatch(/too many failed logins from .*127\.0\.0\.1; try again in \d+ s/);
    expect(await codeOf(connectMonitor({ url: hub.url, token: 'guess-three-token' }))).toBe('RATE_LIMITED');
    const http = await rawGet(hub.url, '/api/workflows', TOKENS.monitor);
    expect(http.status).toBe(429);
    expect(JSON.parse(http.body).error.code).toBe('RATE_LIMITED');
    // Each guess is a warning; the refusals of the throttled address after them, at every try, are not.
    const refusals = [...log.find('connection refused'), ...log.find('http request refused')];
    expect(refusals.filter((entry) => entry.level === LEVEL.warn).map((entry) => entry.code)).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
    expect(refusals.filter((entry) => entry.level === LEVEL.debug).map((entry) => entry.code)).toEqual(['RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED']);

    // The agent token logged in from here before: another agent with it is let in and registers.
    const second = connectAgent({ url: hub.url, token: TOKENS.agent, agentId: 'second', agentType: 'worker' });
    expect(await codeOf(second)).toBe('resolved');
    await (await second).close();
  });

  it('lets the clients back in after a restart once their throttled address has allowance again: their own refusals do not count', async () => {
    const dataDir = tempDir();
    const failedLogins = { burst: 1, perMinute: 120 };
    const first = await startHub({ dataDir, failedLogins });
    const port = Number(new URL(first.url).port);
    // The agents reach the hub through a proxy, so that they come back only after a guess throttled their address.
    const proxy = await startTcpProxy(port);
    onTestFinished(() => proxy.close());
    const agents = await Promise.all(Array.from({ length: 8 }, (_, i) => agent({ url: proxy.through(first.url) }, { agentId: `a${i}`, agentType: 'worker' })));
    proxy.refuse();
    await first.close();
    // The new hub has not seen these tokens log in from here: a guess throttles them all, as any other token.
    const second = await startHub({ dataDir, failedLogins, port });
    expect(await codeOf(connectControl({ url: second.url, token: 'guess-one-token' }))).toBe('UNAUTHENTICATED');
    proxy.refuse(false);
    // Each reconnecting agent is refused RATE_LIMITED until the allowance is back (half a second); counted, their
    // retries (up to one per 2 s each) would keep the address below it for good.
    await untilTrue(() => agents.every((client) => client.connection.socket.connected), 'every agent to connect again', 5000);
    await untilTrue(() => Object.values(second.state.agents ?? {}).every((a) => a.disconnectedSince === null), 'every agent to register again', 5000);
  });

  it('counts the unknown tokens of pages of other sites apart: a web page that guesses cannot lock out the clients on its machine', async () => {
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 } });
    await agent(hub, { agentId: 'beside', agentType: 'worker' });
    // What a browser sends for a page of another site: an Origin on a WebSocket, Sec-Fetch-Site on a fetch or <img>.
    const page = { origin: 'http://evil.example' };
    // A token admits a page of any origin over WebSocket; the HTTP answers are not for its eyes (no CORS).
    expect(await login(hub.url, TOKENS.admin, page)).toBe('connected');
    const read = await fetch(`${hub.url}/api/workflows`, { headers: { ...page, authorization: `Bearer ${TOKENS.monitor}` } });
    expect([read.status, read.headers.get('access-control-allow-origin')]).toEqual([200, null]);
    // Far enough past the burst that, counted with the address's other logins, even the agent token would be refused.
    for (let i = 0; i < 25; i++) expect(await login(hub.url, `guess-${i}-token`, page)).toMatch(/^(UNAUTHENTICATED|RATE_LIMITED): /);
    expect((await rawGet(hub.url, '/api/workflows', 'guess-http-token', { 'sec-fetch-site': 'cross-site' })).status).toBe(429);
    expect(await login(hub.url, TOKENS.admin, page)).toMatch(/^RATE_LIMITED: too many failed logins from .*127\.0\.0\.1 by pages of other sites;/);
    expect(await login(hub.url, TOKENS.admin, { origin: 'null' })).toMatch(/^RATE_LIMITED: /);

    // Clients that are no page of another site are let in: a script, the hub's own dashboard, a fetch of its own.
    expect(await login(hub.url, TOKENS.admin, {})).toBe('connected');
    expect(await login(hub.url, TOKENS.admin, { origin: hub.url })).toBe('connected');
    expect((await rawGet(hub.url, '/api/workflows', TOKENS.monitor)).status).toBe(200);
    expect((await rawGet(hub.url, '/api/workflows', TOKENS.monitor, { 'sec-fetch-site': 'same-origin' })).status).toBe(200);
    expect(await codeOf(connectAgent({ url: hub.url, token: TOKENS.agent, agentId: 'second', agentType: 'worker' }).then((client) => client.close()))).toBe('resolved');
  });

  it('refuses a page that passes for the hub\'s own (DNS rebinding) before its tokens are counted', async () => {
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 } });
    // evil.example resolves to the hub's address: its page is same-origin with what it asks.
    const { port } = new URL(hub.url);
    const rebound = { host: `evil.example:${port}`, origin: `http://evil.example:${port}` };
    for (let i = 0; i < 5; i++) expect(await login(hub.url, `guess-${i}-token`, rebound)).toBe('no code: websocket error');
    // The hub's own dashboard logs in: nothing was counted.
    expect(await login(hub.url, TOKENS.admin, { origin: hub.url })).toBe('connected');
  });

  it('with allowedHosts off, counts the unknown tokens of such a page with browser pages only, never with agents and scripts', async () => {
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 }, allowedHosts: '*' });
    await agent(hub, { agentId: 'beside', agentType: 'worker' });
    const { port } = new URL(hub.url);
    const rebound = { host: `evil.example:${port}`, origin: `http://evil.example:${port}` };
    for (let i = 0; i < 25; i++) expect(await login(hub.url, `guess-${i}-token`, rebound)).toMatch(/^(UNAUTHENTICATED|RATE_LIMITED): /);
    expect(await login(hub.url, TOKENS.admin, { origin: hub.url })).toMatch(/^RATE_LIMITED: too many failed logins from .*127\.0\.0\.1 by browser pages;/);
    expect(await login(hub.url, TOKENS.admin, {})).toBe('connected');
    expect((await rawGet(hub.url, '/api/workflows', TOKENS.monitor)).status).toBe(200);
    expect(await codeOf(connectAgent({ url: hub.url, token: TOKENS.agent, agentId: 'second', agentType: 'worker' }).then((client) => client.close()))).toBe('resolved');
  });

  it('throttles each client behind a trusted proxy by the address the proxy names, never by what the client wrote', async () => {
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 }, trustedProxies: ['127.0.0.1'] });
    // The guesser is 10.0.0.1 to the proxy, which appends that to what the guesser wrote.
    const guesser = { 'x-forwarded-for': '10.0.0.2, 10.0.0.1' };
    expect(await login(hub.url, 'guess-one-token', guesser)).toBe('UNAUTHENTICATED: unknown token');
    expect((await rawGet(hub.url, '/api/workflows', 'guess-two-token', guesser)).status).toBe(401);
    expect(await login(hub.url, TOKENS.admin, guesser)).toMatch(/^RATE_LIMITED: too many failed logins from 10\.0\.0\.1;/);
    // Another client of the proxy, with a token it never used, is let in.
    const other = { 'x-forwarded-for': '10.0.0.2' };
    expect(await login(hub.url, TOKENS.admin, other)).toBe('connected');
    expect((await rawGet(hub.url, '/api/workflows', TOKENS.monitor, other)).status).toBe(200);
  });

  it('takes no X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 }, trustedProxies: ['10.9.9.9'] });
    for (const guess of ['guess-one-token', 'guess-two-token']) expect(await login(hub.url, guess, { 'x-forwarded-for': '10.0.0.1' })).toBe('UNAUTHENTICATED: unknown token');
    // All of them came from 127.0.0.1, whatever they wrote.
    expect(await login(hub.url, TOKENS.admin, { 'x-forwarded-for': '10.0.0.2' })).toMatch(/^RATE_LIMITED: too many failed logins from .*127\.0\.0\.1;/);
    expect(await codeOf(startHub({ trustedProxies: ['proxy.local'] }))).toBe('VALIDATION');
  });

  it('counts neither a missing token nor a known token of the wrong role against the address', async () => {
    const hub = await startHub({ failedLogins: { burst: 1, perMinute: 1 } });
    for (let i = 0; i < 3; i++) {
      expect(await codeOf(connectControl({ url: hub.url, token: '' }))).toBe('UNAUTHENTICATED');
      expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.monitor }))).toBe('FORBIDDEN');
      expect((await rawGet(hub.url, '/api/workflows')).status).toBe(401);
    }
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.admin }))).toBe('resolved');
  });

  it('tells a client why what it sent can be no token (white space read from a file, not a string), and counts none of it as a guess', async () => {
    const hub = await startHub({ failedLogins: { burst: 1, perMinute: 1 } });
    const refusal = async (token: unknown) => hubErrorOf(connectControl({ url: hub.url, token: token as string }));
    for (let i = 0; i < 3; i++) {
      expect((await refusal(`${TOKENS.admin}\n`)).message).toContain('unknown token: it has white space at its start or end, which no token has');
      expect((await refusal(12345678)).message).toContain('unknown token: a token is a string, not a number');
      expect((await refusal('short')).message).toContain('unknown token: a token is 8 to 200 printable ASCII characters without spaces');
      const http = await rawGet(hub.url, `/api/workflows?token=${encodeURIComponent(` ${TOKENS.monitor}`)}`);
      expect([http.status, JSON.parse(http.body).error.message]).toEqual([401, expect.stringContaining('white space')]);
    }
    // Nothing counted: an admin token never used from here is let in, and a real guess is still told apart.
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.admin }))).toBe('resolved');
    expect((await refusal('guess-one-token')).message).toContain('refused the token: unknown token. ');
  });

  it('tells a token of the wrong role which role it has and which the client needs', async () => {
    const hub = await startHub();
    const error = await hubErrorOf(connectControl({ url: hub.url, token: TOKENS.agent }));
    expect([error.code, error.message.includes('an agent token cannot use this; it needs admin')]).toEqual(['FORBIDDEN', true]);
  });

  it('keeps the tokens in force when a reload finds the data directory\'s tokens.json gone, rather than generating new ones', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir, tokens: undefined });
    const file = join(dataDir, 'tokens.json');
    const admin = (JSON.parse(readFileSync(file, 'utf8')) as Array<{ role: string; token: string }>).find((t) => t.role === 'admin')!.token;
    const client = await connectControl({ url: hub.url, token: admin });
    onTestFinished(() => client.close());
    const before = hub.tokens;
    // The list handed out cannot be changed behind the hub's back.
    expect(() => (before as Array<(typeof before)[number]>).push({ ...before[0]!, token: 'x'.repeat(32) })).toThrow(TypeError);
    rmSync(file);
    await expect(hub.reloadTokens()).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`${file} is missing; the tokens in force are kept`) });
    expect(hub.tokens).toBe(before);
    expect(existsSync(file)).toBe(false);
    // The connection is kept, and the token still opens new ones.
    expect((await client.listWorkflows()).items).toEqual([]);
    expect(await codeOf(connectControl({ url: hub.url, token: admin }).then((again) => again.close()))).toBe('resolved');
  });

  it('reconnects the clients of a token whose scope a reload changed under the new grant, and cuts off those of a token revoked', async () => {
    const file = join(tempDir(), 'tokens.json');
    const grants = (workflows: string[]) => [...GRANTS, { token: 'scoped-monitor-token', role: 'monitor' as const, workflows }];
    writeFileSync(file, JSON.stringify(grants(['first'])), { mode: 0o600 });
    const hub = await startHub({ tokensFile: file, tokens: undefined });
    const client = await control(hub);
    await client.createWorkflow({ id: 'first', userQuery: 'in scope' });
    await client.createWorkflow({ id: 'second', userQuery: 'added to the scope' });
    const scoped = await monitor(hub, 'scoped-monitor-token');
    const revoked = await monitor(hub);
    expect(await codeOf(scoped.subscribe('second'))).toBe('FORBIDDEN');
    const socket = scoped.connection.socket;
    const back = new Promise<void>((resolve) => socket.once('disconnect', () => socket.once('connect', () => resolve())));
    const cutOff = new Promise<string>((resolve) => revoked.connection.socket.once('disconnect', (reason) => resolve(reason)));
    writeFileSync(file, JSON.stringify(grants(['first', 'second']).filter((grant) => grant.token !== TOKENS.monitor)));
    await hub.reloadTokens();
    // Closed with 'io server disconnect', the client would never come back, though its token works.
    await back;
    expect((await scoped.subscribe('second')).state).toMatchObject({ id: 'second' });
    expect(await cutOff).toBe('io server disconnect');
    expect(revoked.connection.socket.active).toBe(false);
  });
});
