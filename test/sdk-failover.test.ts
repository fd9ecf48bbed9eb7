import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectAgent, connectControl, type AgentClient, type AgentOptions, type ConnectOptions, type ControlClient } from '../client-sdk/index.ts';
import { hubErrorOf } from './helpers/errors.ts';
import { control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { freePort } from './helpers/ports.ts';
import { deferred, untilOrder } from './helpers/wait.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';

/** Hub settings that make sweeps quick and give a returning agent time to take its work back. */
const FAST = { sweepIntervalMs: 20, graceMs: 10_000, backoffBaseMs: 50, backoffMaxMs: 200 };

/** A node that speaks as a cluster's follower: how often it refused, at its URL. */
interface Follower {
  url: string;
  refusals: number;
}

/**
 * Starts a socket.io server that refuses /control and /agent as a follower does, with NOT_LEADER
 * naming `leader` (null: no leader known); on `port` when given. Closed when the test ends.
 */
async function startFollower(leader: { nodeId: string; url: string } | null, port = 0): Promise<Follower> {
  const http = createServer();
  const io = new Server(http, { serveClient: false });
  const follower: Follower = { url: '', refusals: 0 };
  for (const namespace of ['/control', '/agent']) {
    io.of(namespace).use((_socket, next) => {
      follower.refusals++;
      const message = 'this node is a follower';
      next(Object.assign(new Error(message), { data: { code: 'NOT_LEADER', message, leader } }));
    });
  }
  http.listen(port, '127.0.0.1');
  await once(http, 'listening');
  follower.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  onTestFinished(() => new Promise<void>((done) => io.close(() => done())));
  return follower;
}

/** A URL where nothing listens. */
async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/** Connects a control client to `url` (one node or several) with the admin token; closed when the test ends. */
async function controlAt(url: ConnectOptions['url']): Promise<ControlClient> {
  const client = await connectControl({ url, token: TOKENS.admin });
  onTestFinished(() => client.close());
  return client;
}

/** Connects an agent to `url` (one node or several) with the agent token; closed when the test ends. */
async function agentAt(url: ConnectOptions['url'], options: Omit<AgentOptions, 'url' | 'token'>): Promise<AgentClient> {
  const client = await connectAgent({ url, token: TOKENS.agent, ...options });
  onTestFinished(() => client.close());
  return client;
}

/** Resolves at the next connection of a client's socket. */
function nextConnect(client: { connection: { socket: { once(event: 'connect', listener: () => void): unknown } } }): Promise<void> {
  return new Promise((resolve) => client.connection.socket.once('connect', () => resolve()));
}

describe('connecting to a cluster with the SDK', () => {
  it('connects to the next URL of the list when the first does not answer, and works there', async () => {
    const hub = await startHub();
    const client = await controlAt([await deadUrl(), hub.url]);
    expect(client.connection.url).toBe(hub.url);
    const wf = await client.createWorkflow({ userQuery: 'second node' });
    expect(hub.state.workflows.get(wf.id)).toBeDefined();
  });

  it('follows a follower’s NOT_LEADER refusal to the leader it names', async () => {
    const hub = await startHub();
    const follower = await startFollower({ nodeId: 'leader', url: hub.url });
    const client = await controlAt(follower.url);
    expect(follower.refusals).toBe(1);
    expect(client.connection.url).toBe(hub.url);
    const wf = await client.createWorkflow({ userQuery: 'redirected' });
    expect(hub.state.workflows.get(wf.id)).toBeDefined();
  });

  it('registers an agent sent to a follower with the leader, where it gets its task done', async () => {
    const hub = await startHub();
    const follower = await startFollower({ nodeId: 'leader', url: hub.url });
    const worker = await agentAt(follower.url, { agentId: 'redirected', agentType: 'w' });
    await worker.onTask('t', () => ({ result: 'done on the leader' }));
    expect(worker.connection.url).toBe(hub.url);
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'agent redirect' });
    await wf.start();
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(order.result).toBe('done on the leader');
  });

  it('tries the next node of the list when a follower knows no leader', async () => {
    const hub = await startHub();
    const follower = await startFollower(null);
    const client = await controlAt([follower.url, hub.url]);
    expect(follower.refusals).toBe(1);
    expect(client.connection.url).toBe(hub.url);
    await client.createWorkflow({ userQuery: 'next node' });
  });

  it('moves a connected client to the next node of its list when its node goes away, and its requests succeed there', async () => {
    const dataDir = tempDir();
    const portB = await freePort();
    const first = await startHub({ dataDir });
    const client = await controlAt([first.url, `http://127.0.0.1:${portB}`]);
    const wf = await client.createWorkflow({ userQuery: 'failover' });
    const back = nextConnect(client);
    await first.close();
    // The data directory is one hub's at a time: the next node starts on it once the first is gone.
    const second = await startHub({ dataDir, port: portB });
    await back;
    expect(client.connection.url).toBe(second.url);
    await client.workflow(wf.id).start();
    expect(second.state.workflows.get(wf.id)?.status).toBe('in_progress');
  });

  it('lets an agent finish its running task on the next node of its list when its node goes away', async () => {
    const dataDir = tempDir();
    const portB = await freePort();
    const first = await startHub({ ...FAST, dataDir });
    const wf = await (await control(first)).createWorkflow({ userQuery: 'agent failover' });
    await wf.start();
    const started = deferred();
    const release = deferred();
    const worker = await agentAt([first.url, `http://127.0.0.1:${portB}`], { agentId: 'steady', agentType: 'w' });
    await worker.onTask('t', async () => {
      started.resolve();
      await release.promise;
      return { result: 'finished on the next node' };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { leaseMs: 10_000 } });
    await started.promise;
    const back = nextConnect(worker);
    await first.close();
    const second = await startHub({ ...FAST, dataDir, port: portB });
    await back;
    expect(worker.connection.url).toBe(second.url);
    release.resolve();
    const order = await untilOrder(second, wf.id, 'job', 'completed');
    expect(order.result).toBe('finished on the next node');
    expect(order.history).toHaveLength(1);
  });

  it('connects again by itself after a reconnection refused for too many failed logins from its address', async () => {
    const http = createServer();
    const io = new Server(http, { serveClient: false });
    let refusals = 0;
    io.of('/control').use((_socket, next) => {
      if (refusals === 0) return next();
      refusals--;
      const message = 'too many failed logins from 127.0.0.1; try again in 1 s';
      next(Object.assign(new Error(message), { data: { code: 'RATE_LIMITED', message } }));
    });
    io.of('/control').on('connection', (socket) => socket.on('workflow.list', (_input: unknown, ack: (reply: unknown) => void) => ack({ ok: true, data: { items: [], nextCursor: null } })));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    onTestFinished(() => new Promise<void>((done) => io.close(() => done())));
    const client = await connectControl({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, token: TOKENS.admin });
    onTestFinished(() => client.close());
    refusals = 2;
    const back = new Promise<void>((resolve) => client.connection.socket.once('connect', () => resolve()));
    for (const socket of io.of('/control').sockets.values()) socket.conn.close();
    await back;
    expect(refusals).toBe(0);
    expect(await client.listWorkflows()).toEqual({ items: [], nextCursor: null });
  });

  it('keeps a node that answers other requests when one request outlasts its short timeout', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const next = await startFollower(null);
    const client = await connectControl({ url: [hub.url, next.url], token: TOKENS.admin });
    onTestFinished(() => client.close());
    store.hold();
    let settled = false;
    const slow = hubErrorOf(client.createWorkflow({ userQuery: 'held' }, { timeoutMs: 300 })).finally(() => (settled = true));
    // Reads are answered meanwhile: the node is slow with one write, not gone.
    while (!settled) await client.listWorkflows();
    expect((await slow).code).toBe('TIMEOUT');
    expect(client.connection.url).toBe(hub.url);
    store.release();
    expect((await client.listWorkflows()).items.map((wf) => wf.userQuery)).toEqual(['held']);
    expect(next.refusals).toBe(0);
  });

  it('follows the refusal of a node that became a follower to the new leader; a request made meanwhile waits and succeeds there', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir });
    const client = await controlAt(first.url);
    const wf = await client.createWorkflow({ userQuery: 'leadership moved' });
    const refused = new Promise<void>((resolve) => {
      client.connection.socket.on('connect_error', (error: Error & { data?: { code?: string } }) => {
        if (error.data?.code === 'NOT_LEADER') resolve();
      });
    });
    await first.close();
    const second = await startHub({ dataDir });
    // The old leader's address now answers as a follower naming the new leader.
    const follower = await startFollower({ nodeId: 'second', url: second.url }, first.port);
    await refused;
    // socket.io gave up after the refusal; the SDK reconnects to the leader, and the request waits for it.
    expect(client.connection.socket.active).toBe(false);
    await client.workflow(wf.id).start();
    expect(follower.refusals).toBe(1);
    expect(client.connection.url).toBe(second.url);
    expect(second.state.workflows.get(wf.id)?.status).toBe('in_progress');
  });

  it('still fails fast at a refused token, with a list of URLs and after a follower’s redirect', async () => {
    const hub = await startHub();
    const follower = await startFollower({ nodeId: 'leader', url: hub.url });
    // A connect timeout far past the test timeout: only failing at the refusal can settle these.
    for (const url of [[hub.url, await deadUrl()], [follower.url]]) {
      const error = await hubErrorOf(connectControl({ url, token: 'not-a-real-token', connectTimeoutMs: 600_000 }));
      expect(error.code).toBe('UNAUTHENTICATED');
      expect(error.message).toContain(hub.url);
    }
  });

  it('fails with DISCONNECTED, naming every URL, once no node of the list answers', async () => {
    const urls = [await deadUrl(), await deadUrl()];
    const error = await hubErrorOf(connectControl({ url: urls, token: TOKENS.admin, connectTimeoutMs: 600_000 }));
    expect(error.code).toBe('DISCONNECTED');
    for (const url of urls) expect(error.message).toContain(url);
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('says the node is a follower that knows no leader when no leader turns up within connectTimeoutMs', async () => {
    const follower = await startFollower(null);
    const error = await hubErrorOf(connectAgent({ url: follower.url, token: TOKENS.agent, agentId: 'a', agentType: 'w', connectTimeoutMs: 500 }));
    expect(error.code).toBe('DISCONNECTED');
    expect(error.message).toContain(follower.url);
    expect(error.message).toContain('is a follower');
    expect(error.message).toContain('knows no leader');
    expect(follower.refusals).toBeGreaterThanOrEqual(1);
  });

  it('refuses an empty list of URLs, and a bad one naming its place in the list', async () => {
    const empty = await hubErrorOf(connectControl({ url: [], token: TOKENS.admin }));
    expect(empty.code).toBe('VALIDATION');
    const bad = await hubErrorOf(connectControl({ url: ['http://127.0.0.1:4700', 'localhost:4700'], token: TOKENS.admin }));
    expect(bad.code).toBe('VALIDATION');
    expect(bad.issues?.[0]?.path).toEqual(['url', 1]);
  });
});
