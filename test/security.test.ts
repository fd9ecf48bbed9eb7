import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { agent, control, GRANTS, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { codeOf } from './helpers/errors.ts';
import { deferred, untilOrder } from './helpers/wait.ts';
import { startHubProcess } from './helpers/process.ts';
import { connectAgent, connectControl } from '../client-sdk/index.ts';
import { createHub } from '../server/index.ts';
import { optionsFrom } from '../server/cli/start.ts';
import { tokens } from '../server/cli/tokens.ts';
import { looseTokenFileWarning } from '../server/transport/auth.ts';
import { logRecorder } from './helpers/log-recorder.ts';

/** Connects a raw socket.io client; resolves with the socket, or the connect_error's code. */
function rawConnect(url: string, namespace: string, token: string | undefined): Promise<{ socket?: Socket; refused?: string }> {
  const socket = io(`${url}${namespace}`, { auth: token === undefined ? {} : { token }, transports: ['websocket'], forceNew: true, reconnection: false });
  onTestFinished(() => void socket.disconnect());
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ socket }));
    socket.once('connect_error', (error: Error & { data?: { code?: string } }) => resolve({ refused: error.data?.code ?? error.message }));
  });
}

describe('security', () => {
  it('refuses a missing, unknown or wrong-role token on every namespace with connect_error', async () => {
    const hub = await startHub();
    const allowed = { '/control': [TOKENS.admin], '/agent': [TOKENS.agent], '/monitor': [TOKENS.monitor, TOKENS.admin] } as const;
    for (const namespace of ['/control', '/agent', '/monitor'] as const) {
      expect((await rawConnect(hub.url, namespace, undefined)).refused, namespace).toBe('UNAUTHENTICATED');
      expect((await rawConnect(hub.url, namespace, 'not-a-real-token')).refused, namespace).toBe('UNAUTHENTICATED');
      for (const token of Object.values(TOKENS)) {
        const outcome = await rawConnect(hub.url, namespace, token);
        expect(outcome.refused, `${namespace} with ${token}`).toBe((allowed[namespace] as readonly string[]).includes(token) ? undefined : 'FORBIDDEN');
      }
    }
  });

  it('takes a socket.io token from the handshake\'s auth only: one in the query string or an Authorization header is no token', async () => {
    const hub = await startHub();
    const refusal = (options: object) => {
      const socket = io(`${hub.url}/control`, { transports: ['websocket'], forceNew: true, reconnection: false, ...options });
      onTestFinished(() => void socket.disconnect());
      return new Promise((resolve) => {
        socket.once('connect', () => resolve('connected'));
        socket.once('connect_error', (error: Error & { data?: { code?: string } }) => resolve(error.data?.code));
      });
    };
    expect(await refusal({ query: { token: TOKENS.admin } })).toBe('UNAUTHENTICATED');
    expect(await refusal({ extraHeaders: { authorization: `Bearer ${TOKENS.admin}` } })).toBe('UNAUTHENTICATED');
    expect(await refusal({ auth: { token: TOKENS.admin } })).toBe('connected');
  });

  it('refuses the main namespace, which serves nothing, instead of letting a token-less client in to wait for answers', async () => {
    const hub = await startHub();
    for (const token of [undefined, TOKENS.admin]) expect((await rawConnect(hub.url, '/', token)).refused).toBe('VALIDATION');
    expect((await rawConnect(hub.url, '/monitor', TOKENS.monitor)).socket?.connected).toBe(true);
  });

  it('lets a monitor change nothing: control events on /monitor are unknown there', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'read only' });
    const { socket } = await rawConnect(hub.url, '/monitor', TOKENS.monitor);
    const version = (await wf.summary()).version;
    for (const event of ['workflow.start', 'workflow.cancel', 'workOrder.create', 'task.complete']) {
      const reply = await socket!.emitWithAck(event, { workflowId: wf.id, taskType: 't' });
      expect(reply, event).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    }
    expect((await wf.summary()).version).toBe(version);
    expect((await wf.get()).status).toBe('pending');
  });

  it('lets an agent touch only work assigned to it, even with the right attempt token', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'mine' });
    await wf.start();
    const holder = await agent(hub, { agentId: 'holder', agentType: 'w' });
    const started = deferred<string>();
    await holder.onTask('t', async (task) => {
      started.resolve(task.attemptToken);
      await new Promise(() => undefined);
    });
    const thief = await agent(hub, { agentId: 'thief', agentType: 'other' });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const attemptToken = await started.promise;
    await untilOrder(hub, wf.id, 'job', 'running');
    const version = (await wf.summary()).version;
    const steal = { workflowId: wf.id, workOrderId: 'job', attemptToken };
    expect(await codeOf(thief.connection.request('task.complete', steal))).toBe('FORBIDDEN');
    expect(await codeOf(thief.connection.request('task.progress', { ...steal, progress: 99 }))).toBe('FORBIDDEN');
    expect(await codeOf(thief.connection.request('task.fail', { ...steal, error: 'x' }))).toBe('FORBIDDEN');
    expect((await wf.summary()).version).toBe(version);
    expect((await wf.getWorkOrder('job')).state).toBe('running');
  });

  it('lets a connection with an agent token bound to an agent act for it only once it has registered', async () => {
    const bound = { token: 'bound-agent-token', role: 'agent' as const, name: 'bound', agentId: 'x1' };
    const hub = await startHub({ tokens: [...GRANTS, bound] });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'bound' });
    await wf.start();
    const holder = await connectAgent({ url: hub.url, token: bound.token, agentId: 'x1', agentType: 'w' });
    onTestFinished(() => holder.close());
    const started = deferred<string>();
    await holder.onTask('t', async (task) => {
      started.resolve(task.attemptToken);
      await new Promise(() => undefined);
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const attemptToken = await started.promise;
    await untilOrder(hub, wf.id, 'job', 'running');
    // A second connection with the same token that never registers.
    const stray: Socket = io(`${hub.url}/agent`, { auth: { token: bound.token }, transports: ['websocket'], forceNew: true, reconnection: false });
    onTestFinished(() => void stray.disconnect());
    const ref = { workflowId: wf.id, workOrderId: 'job', attemptToken };
    const version = (await wf.summary()).version;
    for (const [event, payload] of [
      ['agent.heartbeat', { attemptTokens: [attemptToken] }],
      ['agent.status', { status: 'draining' }],
      ['task.progress', { ...ref, progress: 99 }],
      ['task.complete', { ...ref, result: 'stolen' }],
    ] as const) {
      expect(await stray.emitWithAck(event, payload), event).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    expect((await wf.summary()).version).toBe(version);
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'running', progress: 0 });
  });

  it('refuses /metrics, which counts every workflow, to a monitor token scoped to some', async () => {
    const scoped = { token: 'scoped-monitor-token', role: 'monitor' as const, name: 'scoped', workflows: ['visible'] };
    const hub = await startHub({ tokens: [...GRANTS, scoped] });
    const metrics = (token: string) => fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const refused = await metrics(scoped.token);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect((await metrics(TOKENS.monitor)).status).toBe(200);
  });

  it('refuses names that would reach into Object.prototype (__proto__, constructor, toString)', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'pollution' });
    await wf.start();
    const version = (await wf.summary()).version;
    expect(await codeOf(wf.updateProgress('__proto__', 25))).toBe('VALIDATION');
    expect(await codeOf(wf.updateProgress('constructor', 25))).toBe('VALIDATION');
    expect(await codeOf(wf.createWorkOrder({ taskType: 'toString' }))).toBe('VALIDATION');
    expect(await codeOf(wf.createWorkOrder({ taskType: 't', requirements: ['hasOwnProperty'] }))).toBe('VALIDATION');
    expect(await codeOf(wf.createWorkOrder({ taskType: 't', input: JSON.parse('{"__proto__": {"polluted": true}}') }))).toBe('VALIDATION');
    // JSON.parse makes `__proto__` an own key; zod's record parsing used to drop it without a word.
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "kept": 1}');
    expect(await codeOf(wf.addDataReference({ path: 's3://bucket/x', metadata: proto }))).toBe('VALIDATION');
    expect(await codeOf(wf.addDataReference({ path: 's3://bucket/x', metadata: { constructor: 1 } }))).toBe('VALIDATION');
    expect(await codeOf(wf.updateDataReference('nope', { metadata: proto }))).toBe('VALIDATION');
    expect(await codeOf(wf.createWorkOrder({ taskType: 't', preferences: JSON.parse('{"__proto__": 5}') }))).toBe('VALIDATION');
    expect(await codeOf(agent(hub, { agentId: 'labelled', agentType: 'w', labels: JSON.parse('{"__proto__": "x"}') }))).toBe('VALIDATION');
    const { socket } = await rawConnect(hub.url, '/monitor', TOKENS.monitor);
    expect(await socket!.emitWithAck('subscribeAll', { versions: proto })).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect((await wf.summary()).version).toBe(version);
    expect((await wf.get()).data).toEqual({});
    expect(await client.listAgents()).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).progress).toBeUndefined();
  });

  it('refuses the same names as every client-chosen id: workflow, work order, step, objective, KPI, data, lineage, agent', async () => {
    const hub = await startHub();
    const client = await control(hub);
    expect(await codeOf(client.createWorkflow({ id: 'constructor', userQuery: 'x' }))).toBe('VALIDATION');
    expect((await client.listWorkflows()).items).toEqual([]);
    const wf = await client.createWorkflow({ id: 'ids', userQuery: 'reserved ids' });
    await wf.start();
    const ref = await wf.addDataReference({ id: 'in', path: 's3://bucket/in' });
    const version = (await wf.summary()).version;
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']) {
      const refused = [
        await codeOf(wf.createWorkOrder({ id: name, taskType: 't' })),
        await codeOf(wf.createWorkOrders([{ id: name, taskType: 't' }])),
        await codeOf(wf.addStep({ id: name, name: 's' })),
        await codeOf(wf.addObjective({ id: name, name: 'o' })),
        await codeOf(wf.addKpi({ id: name, name: 'k', target: 1 })),
        await codeOf(wf.addDataReference({ id: name, path: 's3://bucket/x' })),
        await codeOf(wf.linkLineage({ id: name, operation: 'op', inputs: [ref.id], outputs: [ref.id] })),
        await codeOf(wf.recordKpi(name, 1)),
        await codeOf(client.workflow(name).get()),
        await codeOf(agent(hub, { agentId: name, agentType: 'w' })),
      ];
      expect([name, ...refused]).toEqual([name, ...refused.map(() => 'VALIDATION')]);
    }
    expect((await wf.summary()).version).toBe(version);
    expect(await client.listAgents()).toEqual([]);
  });

  it('answers RATE_LIMITED past the per-connection rate and keeps serving the rest', async () => {
    const hub = await startHub({ rateLimit: { perSecond: 5, burst: 20 } });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'limits' });
    const codes = await Promise.all(Array.from({ length: 60 }, (_, i) => codeOf(wf.updateProgress('s', i % 100))));
    const limited = codes.filter((c) => c === 'RATE_LIMITED').length;
    expect(limited).toBeGreaterThan(0);
    expect(codes.filter((c) => c !== 'RATE_LIMITED' && c !== 'resolved')).toEqual([]);
    // Another connection has its own budget: each accepted change happened, the refused ones did not.
    const other = await control(hub);
    expect((await other.workflow(wf.id).summary()).version).toBe(1 + (60 - limited));
    expect((await other.listWorkflows()).items).toHaveLength(1);
  });

  it('counts every request against the rate limit, unknown events and malformed payloads included', async () => {
    // A bucket that practically never refills: exactly `burst` requests get through.
    const hub = await startHub({ rateLimit: { perSecond: 0.001, burst: 20 } });
    const { socket } = await rawConnect(hub.url, '/control', TOKENS.admin);
    const codes = await Promise.all(Array.from({ length: 30 }, (_, i) => socket!.emitWithAck(`no.such.event.${i}`, {}).then((reply) => reply.error.code)));
    expect(codes).toEqual([...Array(20).fill('VALIDATION'), ...Array(10).fill('RATE_LIMITED')]);
    // The refusal names the limit, so the client knows what to pace its requests to.
    expect((await socket!.emitWithAck('workflow.create', { userQuery: 'too late' })).error).toEqual({
      code: 'RATE_LIMITED',
      message: 'too many requests on this connection (rateLimit: 0.001 a second, bursts of 20); slow down and retry',
    });
    expect((await socket!.emitWithAck('workflow.create', 'not an object')).error.code).toBe('RATE_LIMITED');
    expect((await (await control(hub)).listWorkflows()).items).toEqual([]);
    // Another connection has its own budget, spent the same way by malformed payloads.
    const { socket: other } = await rawConnect(hub.url, '/control', TOKENS.admin);
    const malformed = await Promise.all(Array.from({ length: 21 }, () => other!.emitWithAck('workflow.create', 'not an object').then((reply) => reply.error.code)));
    expect(malformed).toEqual([...Array(20).fill('VALIDATION'), 'RATE_LIMITED']);
  });

  it('closes a connection that sends more than maxHttpBufferSize, and stays up for others', async () => {
    const hub = await startHub({ maxHttpBufferSize: 64 * 1024 });
    const { socket } = await rawConnect(hub.url, '/control', TOKENS.admin);
    const closed = new Promise<string>((resolve) => socket!.once('disconnect', (reason) => resolve(reason)));
    socket!.emit('workflow.create', { userQuery: 'x'.repeat(200 * 1024) }, () => undefined);
    expect(await closed).toMatch(/transport (close|error)/);
    const client = await control(hub);
    await client.createWorkflow({ userQuery: 'still here' });
    expect((await client.listWorkflows()).items).toHaveLength(1);
  });

  it('reads tokens from a file or the environment when started from the CLI', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, 'my-tokens.json');
    writeFileSync(file, JSON.stringify([{ token: 'file-admin-token', role: 'admin' }]));
    const fromFile = await startHubProcess(['--port', '0', '--data-dir', dataDir, '--tokens', file]);
    const client = await connectControl({ url: fromFile.url, token: 'file-admin-token' });
    expect((await client.listWorkflows()).items).toEqual([]);
    client.close();
    fromFile.child.kill('SIGTERM');
    await fromFile.exited;
    const fromEnv = await startHubProcess(['--port', '0', '--data-dir', dataDir], { SWITCHBOARD_TOKENS: JSON.stringify([{ token: 'env-admin-token', role: 'admin' }]) });
    expect(await codeOf(connectControl({ url: fromEnv.url, token: 'file-admin-token' }))).toBe('UNAUTHENTICATED');
    const viaEnv = await connectControl({ url: fromEnv.url, token: 'env-admin-token' });
    viaEnv.close();
  });

  it('says a token list or config file is not JSON without quoting the text around the fault, which is a token', async () => {
    const secret = 'sb_admin_Qz7mXc4Rt2Lp9Wv';
    /** The message of what `run` throws (or rejects with), checked to hold no piece of the token. */
    const messageOf = async (run: () => unknown) => {
      const message = await Promise.resolve().then(run).then(() => '', (error: Error) => error.message);
      expect(message).not.toMatch(/sb_adm|Qz7m|Xc4R|Rt2L|Lp9W/);
      return message;
    };
    // The token itself where the list belongs: V8 would quote it whole.
    expect(await messageOf(() => optionsFrom([], { SWITCHBOARD_TOKENS: secret }))).toContain("SWITCHBOARD_TOKENS is not valid JSON: Unexpected token 's'");
    const dir = tempDir();
    const config = join(dir, 'config.json');
    writeFileSync(config, `{ "port": 0, "tokens": [{ "token": ${secret}, "role": "admin" }] }`);
    expect(await messageOf(() => optionsFrom(['--config', config], {}))).toContain(`config ${config} is not valid JSON`);
    // Typographic quotes (a token pasted from a document): V8 would quote the token's first characters.
    const file = join(dir, 'tokens.json');
    writeFileSync(file, `[{ "token": \u201c${secret}\u201d, "role": "admin" }]`);
    expect(await messageOf(() => createHub({ port: 0, logLevel: 'silent', dataDir: dir, tokensFile: file }))).toContain(`token file ${file} is not valid JSON: Unexpected token '\u201c'`);
  });

  it('warns of a token file other users can read, at start, at each reload and after a tokens command, and not once it is 0600', async () => {
    const file = join(tempDir(), 'tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS));
    chmodSync(file, 0o644);
    const log = logRecorder('warn');
    const hub = await startHub({ tokensFile: file, tokens: undefined }, { logger: log.logger });
    const warnings = () => log.entries.filter((entry) => entry.level === 40).map((entry) => entry.msg);
    expect(warnings()).toEqual([looseTokenFileWarning(file, '644')]);
    chmodSync(file, 0o600);
    await hub.reloadTokens();
    expect(warnings()).toHaveLength(1);
    chmodSync(file, 0o640);
    await hub.reloadTokens();
    expect(warnings()).toEqual([looseTokenFileWarning(file, '644'), looseTokenFileWarning(file, '640')]);
    // The CLI says so too, on stderr (its stdout, the token table, is the test's to hide).
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    onTestFinished(() => void vi.restoreAllMocks());
    await tokens(['list', '--file', file]);
    expect(stderr.mock.calls.map(([text]) => String(text))).toEqual([`warning: ${looseTokenFileWarning(file, '640')}\n`]);
  });

  it('warns at start of a tokens.json an earlier start left in the data directory when its tokens come from elsewhere, which the CLI would read first', async () => {
    const dataDir = tempDir();
    // A first start without a token list generates the directory's tokens.json.
    await (await startHub({ dataDir, tokens: undefined })).close();
    const stale = join(dataDir, 'tokens.json');
    const warned = async (options: Parameters<typeof startHub>[0]) => {
      const log = logRecorder('warn');
      await (await startHub({ dataDir, ...options }, { logger: log.logger })).close();
      return log.entries.filter((entry) => entry.file === stale).map((entry) => entry.msg);
    };
    expect(await warned({})).toEqual([expect.stringMatching(new RegExp(`^${stale} is not this hub's token list \\(its tokens come from its tokens option \\(SWITCHBOARD_TOKENS or the config file\\)\\), but the CLI given --data-dir ${dataDir} reads it first`))]);
    const file = join(tempDir(), 'tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS), { mode: 0o600 });
    expect(await warned({ tokens: undefined, tokensFile: file })).toEqual([expect.stringContaining(`(its tokens come from the file ${file})`)]);
    // Read from the directory itself, it is the hub's list: nothing to say.
    expect(await warned({ tokens: undefined })).toEqual([]);
  });

  it('makes the data directory its owner\'s alone (the journal holds the workflows\' data)', async () => {
    const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);
    const root = join(tempDir(), 'new');
    await startHub({ dataDir: join(root, 'data') });
    expect([modeOf(root), modeOf(join(root, 'data'))]).toEqual(['700', '700']);
  });

  it('refuses to start with a token granted twice, in tokens.json or the tokens option, without showing the token', async () => {
    const dataDir = tempDir();
    const twice = [
      { token: 'shared-token-1', role: 'monitor' },
      { token: 'shared-token-1', role: 'admin' },
    ] as const;
    writeFileSync(join(dataDir, 'tokens.json'), JSON.stringify(twice));
    const fromFile = createHub({ port: 0, logLevel: 'silent', dataDir });
    await expect(fromFile).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('the same token as entry 0') });
    await expect(fromFile).rejects.toMatchObject({ message: expect.not.stringContaining('shared-token-1') });
    const fromOption = createHub({ port: 0, logLevel: 'silent', dataDir: tempDir(), tokens: [...twice] });
    await expect(fromOption).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('the same token as entry 0') });
  });

  it('refuses to start with a token an HTTP Authorization header cannot carry as it is, without showing the token', async () => {
    for (const token of ['tökén-secret-1', 'two words here', 'trailing-space ']) {
      const dataDir = tempDir();
      writeFileSync(join(dataDir, 'tokens.json'), JSON.stringify([{ token, role: 'admin' }]));
      const refused = createHub({ port: 0, logLevel: 'silent', dataDir });
      await expect(refused).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('a token must be printable ASCII without spaces') });
      await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining(token.trim()) });
    }
  });
});
