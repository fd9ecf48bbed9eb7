import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectAgent, connectControl, connectMonitor } from '../client-sdk/index.ts';
import { codeOf, hubErrorOf } from './helpers/errors.ts';
import { rawGet } from './helpers/http.ts';
import { agent, control, GRANTS, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';

describe('authentication', () => {
  it('refuses a control connection without a valid admin token', async () => {
    const hub = await startHub();
    expect(await codeOf(connectControl({ url: hub.url, token: 'wrong-token-value' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connectControl({ url: hub.url, token: '' }))).toBe('UNAUTHENTICATED');
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.monitor }))).toBe('FORBIDDEN');
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.admin }))).toBe('resolved');
  });

  it('throttles an address that presents unknown tokens, except for the tokens that logged in from it', async () => {
    const hub = await startHub({ failedLogins: { burst: 2, perMinute: 1 } });
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

    // The agent token logged in from here before: another agent with it is let in and registers.
    const second = connectAgent({ url: hub.url, token: TOKENS.agent, agentId: 'second', agentType: 'worker' });
    expect(await codeOf(second)).toBe('resolved');
    await (await second).close();
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
