// A Switchboard agent written from PROTOCOL.md alone: plain JavaScript, no socket.io client, no
// SDK, no TypeScript. It speaks Engine.IO v4 / Socket.IO v5 by hand over a bare WebSocket, the way
// an agent in Python, Go or Rust would. (Node 20 has no global WebSocket, so it uses `ws`.)
//
//   node examples/raw-agent.mjs                         starts a hub (the CLI), creates a work order, serves it
//   SWITCHBOARD_URL=… SWITCHBOARD_AGENT_TOKEN=… node examples/raw-agent.mjs
//                                                       serves one `shout` work order of that hub, then exits
//   … and SWITCHBOARD_ADMIN_TOKEN=…                     also creates the workflow and the work order itself
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const AGENT_ID = process.env.RAW_AGENT_ID ?? 'raw-agent';
const say = (line) => console.log(`[raw-agent] ${line}`);
/** RAW_AGENT_TRACE=1 prints every frame on the wire. */
const trace = process.env.RAW_AGENT_TRACE ? (direction, text) => console.log(`${direction} ${text}`) : () => undefined;

/** One Engine.IO connection; Socket.IO namespaces (/agent, /control) are multiplexed over it. */
class HubConnection {
  /** Rejects when the WebSocket closes. */
  closed;
  #ws;
  #nextAckId = 1;
  #waitingAcks = new Map(); // "<namespace>:<ackId>" → resolve(envelope)
  #connecting = new Map(); // namespace → { resolve, reject }
  #handlers = new Map(); // "<namespace>:<event>" → handler(payload, ack?)

  static async open(httpUrl) {
    const connection = new HubConnection();
    const url = new URL('/socket.io/?EIO=4&transport=websocket', httpUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    connection.#ws = new WebSocket(url);
    const opened = new Promise((resolve, reject) => {
      connection.#ws.once('error', reject);
      connection.#ws.on('message', (data) => {
        const text = data.toString();
        trace('<', text);
        // Engine.IO packet types: 0 open, 1 close, 2 ping, 3 pong, 4 message. The hub pings; we pong.
        if (text[0] === '0') resolve(JSON.parse(text.slice(1)));
        else if (text === '2') connection.#ws.send('3');
        else if (text[0] === '4') connection.#onPacket(text.slice(1));
      });
    });
    // The hub closes the connection on a packet it cannot parse, an event without an ack id, or a missed pong.
    connection.closed = new Promise((_, reject) => {
      connection.#ws.once('close', (code) => {
        const error = { ok: false, error: { code: 'UNAVAILABLE', message: `the hub closed the connection (${code})` } };
        for (const waiter of [...connection.#waitingAcks.values()]) waiter(error);
        reject(new Error(error.error.message));
      });
    });
    connection.closed.catch(() => undefined);
    const handshake = await opened;
    say(`engine.io open: sid ${handshake.sid}, ping every ${handshake.pingInterval} ms, max message ${handshake.maxPayload} bytes`);
    return connection;
  }

  /** Socket.IO packet: <type>[/namespace,][ackId][JSON]. 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR. */
  #onPacket(text) {
    const match = /^(\d)(?:(\/[^,]*),)?(\d*)([\s\S]*)$/.exec(text);
    if (!match) return;
    const [, type, namespace = '/', ackId, json] = match;
    const data = json ? JSON.parse(json) : undefined;
    if (type === '0') this.#connecting.get(namespace)?.resolve(data);
    else if (type === '4') this.#connecting.get(namespace)?.reject(Object.assign(new Error(data.message), { data: data.data }));
    else if (type === '3') this.#waitingAcks.get(`${namespace}:${ackId}`)?.(data[0]);
    else if (type === '2') {
      const [event, payload] = data;
      const handler = this.#handlers.get(`${namespace}:${event}`);
      const ack = ackId === '' ? undefined : (reply) => this.#send(`3${namespace},${ackId}${JSON.stringify([reply])}`);
      if (handler) handler(payload, ack);
    } else if (type === '1') say(`the hub closed namespace ${namespace}`);
  }

  #send(text) {
    trace('>', `4${text}`);
    this.#ws.send(`4${text}`);
  }

  /** Joins a namespace with a token; rejects with the hub's { code, message } if refused. */
  connect(namespace, token) {
    return new Promise((resolve, reject) => {
      this.#connecting.set(namespace, { resolve, reject });
      this.#send(`0${namespace},${JSON.stringify({ token })}`);
    });
  }

  /** Sends a request with an ack id (the hub closes the connection on an event without one) and returns `data`, or throws the error. */
  request(namespace, event, payload) {
    const ackId = this.#nextAckId++;
    return new Promise((resolve, reject) => {
      this.#waitingAcks.set(`${namespace}:${ackId}`, (envelope) => {
        this.#waitingAcks.delete(`${namespace}:${ackId}`);
        if (envelope.ok) resolve(envelope.data);
        else reject(Object.assign(new Error(`${envelope.error.code}: ${envelope.error.message}`), { code: envelope.error.code }));
      });
      this.#send(`2${namespace},${ackId}${JSON.stringify([event, payload])}`);
    });
  }

  /** Handles a push of the hub; `ack` is given when the hub waits for an answer. */
  on(namespace, event, handler) {
    this.#handlers.set(`${namespace}:${event}`, handler);
  }

  async close() {
    if (this.#ws.readyState !== WebSocket.OPEN) return;
    for (const namespace of this.#connecting.keys()) this.#send(`1${namespace},`);
    this.#ws.close();
    await once(this.#ws, 'close');
  }
}

/** The hub to use: SWITCHBOARD_URL with tokens from the environment, or a fresh one started with the CLI. */
async function hubToUse() {
  const url = process.env.SWITCHBOARD_URL;
  if (url) {
    const file = process.env.SWITCHBOARD_TOKENS_FILE;
    const grants = file ? JSON.parse(readFileSync(file, 'utf8')) : [];
    const token = (role) => process.env[`SWITCHBOARD_${role.toUpperCase()}_TOKEN`] ?? grants.find((g) => g.role === role)?.token;
    return { url, agentToken: token('agent'), adminToken: token('admin'), stop: async () => undefined };
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-raw-agent-'));
  // The CLI from this repository's sources, through tsx (a devDependency), so it is never an older build.
  const cli = fileURLToPath(new URL('../server/cli.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), cli, 'start', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let printed = '';
  const hubUrl = await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      printed += chunk;
      const found = /listening on (http:\/\/\S+)/.exec(printed);
      if (found) resolve(found[1]);
    });
    child.once('exit', (code) => reject(new Error(`the hub exited with ${code}`)));
  });
  say(`started a hub with the CLI at ${hubUrl}`);
  const grants = JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8'));
  const stop = async () => {
    child.kill('SIGTERM');
    if (child.exitCode === null) await once(child, 'exit');
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url: hubUrl, agentToken: grants.find((g) => g.role === 'agent').token, adminToken: grants.find((g) => g.role === 'admin').token, stop };
}

/** The work itself: shout the input text, in two halves so there is progress to report. */
async function shout(hub, assignment) {
  const attempt = { workflowId: assignment.workflowId, workOrderId: assignment.workOrderId, attemptToken: assignment.attemptToken };
  const text = String(assignment.input?.text ?? 'hello');
  const half = Math.ceil(text.length / 2);
  const first = text.slice(0, half).toUpperCase();
  await hub.request('/agent', 'task.progress', { ...attempt, progress: 50, message: 'first half shouted', details: { done: first } });
  say(`progress 50% (checkpoint saved: ${JSON.stringify(first)})`);
  const beat = await hub.request('/agent', 'agent.heartbeat', { attemptTokens: [attempt.attemptToken] });
  say(`heartbeat: lease renewed for ${beat.renewed.length} attempt(s), lost ${beat.lost.length}`);
  const result = { text: first + text.slice(half).toUpperCase(), length: text.length };
  const done = await hub.request('/agent', 'task.complete', { ...attempt, result });
  say(`task.complete acknowledged: work order ${assignment.workOrderId} is ${done.state} (workflow version ${done.version})`);
  try {
    await hub.request('/agent', 'task.complete', { ...attempt, result });
  } catch (error) {
    say(`a second completion of the same attempt is refused: ${error.code}`);
  }
  return result;
}

async function main() {
  const target = await hubToUse();
  if (!target.agentToken) throw new Error('set SWITCHBOARD_AGENT_TOKEN (or SWITCHBOARD_TOKENS_FILE) with SWITCHBOARD_URL');
  const hub = await HubConnection.open(target.url);
  try {
    await hub.connect('/agent', target.agentToken);
    say('joined /agent');
    // Handlers go in before agent.register: an offer can arrive before the register ack does.
    const served = new Promise((resolve, reject) => {
      hub.on('/agent', 'assignment', (assignment, ack) => {
        say(`offered ${assignment.workOrderId} (attempt ${assignment.attempt}, task ${assignment.taskType}); accepting`);
        ack({ accept: true });
        shout(hub, assignment).then(resolve, reject);
      });
    });
    hub.on('/agent', 'cancel', (notice) => say(`cancelled ${notice.workOrderId}: ${notice.reason}`));
    const registered = await hub.request('/agent', 'agent.register', {
      agentId: AGENT_ID,
      agentType: 'text',
      capabilities: ['uppercase'],
      taskTypes: ['shout'],
      maxConcurrentTasks: 1,
    });
    say(`registered as ${registered.agent.id} (status ${registered.agent.status})`);

    if (target.adminToken) {
      await hub.connect('/control', target.adminToken);
      const { workflow } = await hub.request('/control', 'workflow.create', { userQuery: 'Shout a greeting over the raw protocol' });
      await hub.request('/control', 'workflow.start', { workflowId: workflow.id });
      const order = await hub.request('/control', 'workOrder.create', {
        workflowId: workflow.id,
        taskType: 'shout',
        requirements: ['uppercase'],
        input: { text: 'hello from a raw websocket' },
      });
      say(`created workflow ${workflow.id} and work order ${order.item.id} over /control`);
    } else {
      say('waiting for a shout work order');
    }
    const result = await Promise.race([served, hub.closed]);
    say(`result: ${JSON.stringify(result)}`);
  } finally {
    await hub.close();
    await target.stop();
  }
  say('done');
}

main().catch((error) => {
  console.error(`[raw-agent] failed: ${error.message}`);
  process.exit(1);
});
