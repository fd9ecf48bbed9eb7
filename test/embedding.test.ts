import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import type { Actor } from '../server/domain/machinery/actor.ts';
import type { HubState } from '../server/domain/machinery/state.ts';
import { createHub, type RunningHub } from '../server/index.ts';
import type { PinnedJson } from '../server/pinned-json.ts';
import { ReportRenderer } from '../server/reports/report-renderer.ts';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { CreateWorkOrdersInput } from '../shared/schemas/work-order.ts';
import { GRANTS, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { rawGet } from './helpers/http.ts';
import { freePort } from './helpers/ports.ts';
import { deferred } from './helpers/wait.ts';

// The hub as an application embeds it: createHub's options, its lifecycle and a shared server.

const ADMIN: Actor = { role: 'admin', name: 'embedding-test' };
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

  it('leaves at close the listeners the app put on the server after the hub attached', async () => {
    let hub: RunningHub | undefined;
    const server = appServer(() => hub);
    hub = await createHub({ dataDir: tempDir(), tokens: GRANTS, logLevel: 'silent' }, { server });
    // The app's own, added once the hub is there: another WebSocket endpoint, its shutdown hook, a second request listener.
    const onUpgrade = () => undefined;
    const onClose = () => undefined;
    const onRequest = () => undefined;
    server.on('upgrade', onUpgrade);
    server.on('close', onClose);
    server.on('request', onRequest);
    await hub.close();

    expect(server.listeners('upgrade')).toEqual([onUpgrade]);
    expect(server.listeners('close')).toEqual([onClose]);
    expect(server.listeners('request')).toHaveLength(2);
    expect(server.listeners('request')[1]).toBe(onRequest);
  });
});

describe('closing a hub', () => {
  it('answers a big report being sent to the worker when close stops it, without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    onTestFinished(() => void process.off('unhandledRejection', record));

    const hub = await startHub();
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'big', userQuery: 'big' }), actor: ADMIN });
    // Past the 256 KB rendered on the event loop: rendered in the worker.
    const orders = Array.from({ length: 500 }, (_, i) => ({ id: `o${i}`, taskType: 't', input: { text: 'x'.repeat(1000) } }));
    await hub.dispatch({ type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId: 'big', orders }), actor: ADMIN });

    // The workflow's JSON goes to the worker a chunk at a time; after the first, it waits until the worker has stopped.
    const firstChunkSent = deferred();
    const workerStopped = deferred();
    const proto = ReportRenderer.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const renderInWorker = proto.renderInWorker!;
    vi.spyOn(proto, 'renderInWorker').mockImplementation(function (this: ReportRenderer, pinned: unknown, ...rest: unknown[]) {
      const { chunks, ...others } = pinned as PinnedJson;
      async function* gated() {
        let first = true;
        for await (const chunk of chunks) {
          yield chunk;
          if (!first) continue;
          first = false;
          firstChunkSent.resolve();
          await workerStopped.promise;
          // The rest come on later turns of the event loop, as the time-sliced serialiser gives them.
          await new Promise((next) => setImmediate(next));
        }
      }
      return renderInWorker.call(this, { ...others, chunks: gated() }, ...rest);
    });
    const startedWorker = proto.startedWorker!;
    vi.spyOn(proto, 'startedWorker').mockImplementation(function (this: ReportRenderer) {
      const worker = startedWorker.call(this) as Worker;
      worker.once('exit', () => workerStopped.resolve());
      return worker;
    });

    const report = rawGet(hub.url, '/api/workflows/big/report.json', TOKENS.admin);
    await firstChunkSent.promise;
    await hub.close();
    // Refused as the hub going away, not as a broken worker, and nothing was left unhandled.
    const reply = await report;
    expect(unhandled).toEqual([]);
    expect(reply.status).toBe(503);
    expect(JSON.parse(reply.body).error.code).toBe('UNAVAILABLE');
  });
});

describe('the report worker', () => {
  it('stopped as idle while a new one starts: its exit fails none of the new worker\'s renders', async () => {
    const hub = await startHub();
    await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ id: 'big', userQuery: 'big' }), actor: ADMIN });
    // Past the 256 KB rendered on the event loop: rendered in the worker.
    const orders = Array.from({ length: 500 }, (_, i) => ({ id: `o${i}`, taskType: 't', input: { text: 'x'.repeat(1000) } }));
    await hub.dispatch({ type: 'workOrder.createMany', input: CreateWorkOrdersInput.parse({ workflowId: 'big', orders }), actor: ADMIN });
    const renderer = new ReportRenderer();
    onTestFinished(() => renderer.close());
    const internals = renderer as unknown as { worker: Worker | undefined; stopIdle(): Promise<void> };
    // The hub's own state, as its routes hand it to the renderer (embedders get it read-only).
    const state = hub.state as unknown as HubState;
    await renderer.render(state, 'big', ['json']);
    const idle = internals.worker!;
    const idleExited = new Promise((resolve) => idle.once('exit', resolve));

    // The idle timer stops the worker; a render comes before its exit is reported, and is still being sent when it is.
    const proto = ReportRenderer.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const renderInWorker = proto.renderInWorker!;
    vi.spyOn(proto, 'renderInWorker').mockImplementationOnce(function (this: ReportRenderer, pinned: unknown, ...rest: unknown[]) {
      const { chunks, ...others } = pinned as PinnedJson;
      async function* gated() {
        let first = true;
        for await (const chunk of chunks) {
          yield chunk;
          if (first) await idleExited;
          first = false;
        }
      }
      return renderInWorker.call(this, { ...others, chunks: gated() }, ...rest);
    });
    const stopping = internals.stopIdle();
    const [report] = await renderer.render(state, 'big', ['markdown']);
    await stopping;
    expect(report!.format).toBe('markdown');
  });
});

describe('createHub options', () => {
  it('refuses tokens and tokensFile together (one of them would be silently ignored), before it takes the port or the data directory', async () => {
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    const tokensFile = join(dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify([{ token: 'file-admin-token-1234', role: 'admin' }]));
    await expect(createHub({ port: 0, dataDir, tokens: GRANTS, tokensFile, logLevel: 'silent' })).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringMatching(/tokens.*tokensFile/),
    });
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('a data directory another hub holds', () => {
  it('is left as it was by a start it refuses: no tokens generated into it', async () => {
    const dataDir = tempDir();
    // The first hub has its tokens from its options: the directory holds no tokens.json.
    await startHub({ dataDir });
    const files = readdirSync(dataDir).sort();
    expect(files).not.toContain('tokens.json');
    await expect(createHub({ port: 0, dataDir, logLevel: 'silent' })).rejects.toThrow(/in use by another hub/);
    expect(readdirSync(dataDir).sort()).toEqual(files);
  });

  it('a hub that generates its tokens still saves them, and the next start reads them', async () => {
    const dataDir = tempDir();
    const first = await createHub({ port: 0, dataDir, logLevel: 'silent' });
    expect(first.tokensCreated).toBe(true);
    const tokens = first.tokens;
    await first.close();
    const second = await startHub({ dataDir, tokens: undefined });
    expect(second.tokensCreated).toBe(false);
    expect(second.tokens).toEqual(tokens);
  });
});

describe('hub.dispatch', () => {
  it('parses a control command as the transport does: defaults applied, so later commands and a restart work', async () => {
    const dataDir = tempDir();
    const hub = await createHub({ port: 0, dataDir, tokens: GRANTS, logLevel: 'silent' });
    // What an embedding program writes from the README: the request, not its parsed form.
    const input = { id: 'plain', userQuery: 'from the app' } as never;
    const { workflow } = await hub.dispatch({ type: 'workflow.create', input, actor: ADMIN });
    expect(workflow.config.enableDataValidation).toBe(true);
    await hub.dispatch({ type: 'workOrder.create', input: { workflowId: 'plain', id: 'o1', taskType: 't' } as never, actor: ADMIN });
    await hub.close();

    const again = await startHub({ dataDir });
    expect(again.state.workflows.get('plain')?.workOrders['o1']).toMatchObject({ taskType: 't', maxAttempts: 3 });
  });

  it('refuses a bad command with an error saying what is wrong, and changes nothing', async () => {
    const hub = await startHub();
    const versions = new Map(hub.state.versions);
    const bad: Array<[unknown, RegExp]> = [
      [{ type: 'workflow.create', input: { userQuery: 5 }, actor: ADMIN }, /workflow\.create.*userQuery/s],
      [{ type: 'workflow.nope', input: {}, actor: ADMIN }, /unknown command type "workflow\.nope"/],
      [{ type: 'workflow.create', input: { userQuery: 'no actor' } }, /actor/],
    ];
    for (const [command, message] of bad) {
      await expect(hub.dispatch(command as never)).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(message) });
    }
    // As a client's, refused up front: its reports could never be written there.
    const inDataDir = { type: 'workflow.create', input: { userQuery: 'reports in the data directory', outputFolder: hub.options.dataDir }, actor: ADMIN };
    await expect(hub.dispatch(inDataDir as never)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(hub.state.workflows.size).toBe(0);
    expect(new Map(hub.state.versions)).toEqual(versions);
  });
});

describe('a dataDir that is a file', () => {
  it('is refused as the setting it is, and the file and the port are left alone', async () => {
    const dataDir = join(tempDir(), 'data');
    writeFileSync(dataDir, 'not a directory');
    const port = await freePort();
    await expect(createHub({ port, dataDir, tokens: GRANTS, logLevel: 'silent' })).rejects.toMatchObject({
      code: 'VALIDATION',
      message: `dataDir ${dataDir} is not a directory`,
    });
    expect(readFileSync(dataDir, 'utf8')).toBe('not a directory');
    // The port it took first is free again: a retry with a right dataDir starts there.
    const hub = await startHub({ port });
    expect(hub.port).toBe(port);
  });
});
