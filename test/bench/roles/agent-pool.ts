import { io, type ManagerOptions, type Socket } from 'socket.io-client';
import { withTimeout } from '../deadline.ts';
import { epochMs, runClosedLoop, runOpenLoop } from '../open-loop.ts';
import { BENCH_TOKENS, progressPayload } from '../workload.ts';
import { findLeader } from './find-leader.ts';

type Envelope = { ok: true; data: unknown } | { ok: false; error: { code: string; message: string } };
interface AttemptRef {
  workflowId: string;
  workOrderId: string;
  attemptToken: string;
}

/**
 * Opens `count` raw socket.io connections to `namespace`, 100 handshakes at a time; `parser`
 * replaces socket.io's. With `spreadMs`, the handshakes are paced over that long instead, one batch
 * per 100 ms: engine.io pings each socket every 25 s from its connection, so sockets opened within
 * a second of each other are all pinged (and pong) in one burst.
 */
export async function openSockets(
  url: string,
  namespace: string,
  token: string,
  count: number,
  options: { parser?: ManagerOptions['parser']; spreadMs?: number } = {},
): Promise<Socket[]> {
  const sockets: Socket[] = [];
  const spreadMs = options.spreadMs ?? 0;
  const parallel = spreadMs > 0 ? Math.max(1, Math.ceil((count * 100) / spreadMs)) : 100;
  const openOne = () =>
    new Promise<Socket>((resolve, reject) => {
      const socket = io(new URL(namespace, url).href, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, ...(options.parser ? { parser: options.parser } : {}) });
      socket.once('connect', () => resolve(socket));
      socket.once('connect_error', (error) => reject(error));
    });
  const started = performance.now();
  for (let i = 0; i < count; i += parallel) {
    const wait = started + (spreadMs * i) / count - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, openOne))));
  }
  return sockets;
}

/**
 * How long the agents of a pool take to connect: 10 ms per agent, at most 5 s (500 agents: 5 s).
 * All at once, the 1,000 sockets of the progress scenario were pinged within ~2 s, 25 s later, and
 * that burst set the p99 of whichever round it fell into (20–40 ms against 4–9 ms). Spread, 500 agents are pinged over 5 s of every 25 (100 pings/s), as a fleet that
 * connected over time would be, more evenly still.
 * The cap keeps the memory scenario's 5,000 agents from taking 50 s to connect.
 */
const connectSpreadMs = (agents: number) => Math.min(agents * 10, 5000);

/** Sends a request and resolves with its ack envelope. */
export function ask(socket: Socket, event: string, payload: unknown): Promise<Envelope> {
  return new Promise((resolve) => socket.emit(event, payload, (reply: Envelope) => resolve(reply)));
}

/**
 * Agents as bare sockets: cheap enough for hundreds per process. Each registers, accepts the
 * one work order it is offered and then streams progress on it (`task.progress`, acked).
 * Against the raw server the same requests are sent with invented but same-sized references.
 */
export class AgentPool {
  private sockets: Socket[] = [];
  private refs: AttemptRef[] = [];

  /**
   * Connects and registers `count` agents; with `takeWork`, waits until each runs one order.
   * `url` may list a cluster's nodes: the agents go to the one that leads (findLeader).
   */
  async connect(options: { url: string | string[]; count: number; prefix: string; taskType: string; takeWork: boolean }): Promise<{ agents: number; url: string }> {
    const url = await findLeader(options.url, '/agent', BENCH_TOKENS.agent);
    this.sockets = await openSockets(url, '/agent', BENCH_TOKENS.agent, options.count, { spreadMs: connectSpreadMs(options.count) });
    const offered = this.sockets.map(
      (socket) =>
        new Promise<AttemptRef>((resolve) => {
          socket.on('assignment', (assignment: AttemptRef, ack: (reply: unknown) => void) => {
            ack({ accept: true });
            resolve({ workflowId: assignment.workflowId, workOrderId: assignment.workOrderId, attemptToken: assignment.attemptToken });
          });
        }),
    );
    await Promise.all(
      this.sockets.map(async (socket, i) => {
        const reply = await ask(socket, 'agent.register', { agentId: `${options.prefix}-${i}`, agentType: 'bench', taskTypes: [options.taskType], maxConcurrentTasks: 1 });
        if (!reply.ok) throw new Error(`agent.register refused: ${reply.error.code} ${reply.error.message}`);
      }),
    );
    if (!options.takeWork) {
      // The raw server assigns nothing: references of the same shape and length as the hub's.
      this.refs = this.sockets.map((_, i) => ({ workflowId: 'wf_AAAAAAAAAAAA', workOrderId: `wo_${String(i).padStart(12, '0')}`, attemptToken: `att_${String(i).padStart(12, '0')}` }));
      return { agents: this.sockets.length, url };
    }
    this.refs = await withTimeout(Promise.all(offered), 60_000, 'every agent to be offered a work order');
    // The acceptance is committed before the first progress of each agent is; check that it is.
    await Promise.all(
      this.sockets.map(async (socket, i) => {
        for (let tries = 0; ; tries++) {
          const reply = await ask(socket, 'task.progress', progressPayload(this.refs[i]!, 0));
          if (reply.ok) return;
          if (tries > 100) throw new Error(`agent ${i} cannot report progress: ${reply.error.code} ${reply.error.message}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }),
    );
    return { agents: this.sockets.length, url };
  }

  private sendProgress(index: number, label: string, done: (errorCode?: string) => void): void {
    const n = this.sockets.length;
    const socket = this.sockets[index % n]!;
    const payload = progressPayload(this.refs[index % n]!, index, `${label}:${index}`);
    socket.emit('task.progress', payload, (reply: Envelope) => done(reply.ok ? undefined : reply.error.code));
  }

  /**
   * Open-loop progress: request i from agent i mod n at start + i / rate; its message is `run:i`.
   * With `keepAcks`, also when each request's ack came (epoch ms by index, null for none), for
   * staleness counted from the ack (MonitorPool.collect).
   */
  async progressOpen(options: { rate: number; durationMs: number; warmupMs?: number; startEpochMs?: number; run: string; keepAcks?: boolean }) {
    const warmup = Math.round((options.rate * (options.warmupMs ?? 0)) / 1000);
    const acks = options.keepAcks ? new Float64Array(warmup + Math.max(1, Math.round((options.rate * options.durationMs) / 1000))).fill(NaN) : undefined;
    const result = await runOpenLoop({
      rate: options.rate,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs ?? 0,
      ...(options.startEpochMs === undefined ? {} : { startEpochMs: options.startEpochMs }),
      send: acks
        ? (i, _intended, done) =>
            this.sendProgress(i, options.run, (errorCode) => {
              if (!errorCode) acks[i] = epochMs();
              done(errorCode);
            })
        : (i, _intended, done) => this.sendProgress(i, options.run, done),
    });
    return { ...result, latency: result.latency.toJSON(), sendLag: result.sendLag.toJSON(), ...(acks ? { acks: Array.from(acks, (at) => (Number.isNaN(at) ? null : at)) } : {}) };
  }

  /** Progress at saturation: `concurrency` requests in flight over all agents. */
  async progressClosed(options: { concurrency: number; durationMs: number; warmupMs: number }) {
    const result = await runClosedLoop({ ...options, send: (i, done) => this.sendProgress(i, 'sat', done) });
    return { ...result, latency: result.latency.toJSON() };
  }

  close(): void {
    for (const socket of this.sockets) socket.disconnect();
    this.sockets = [];
  }
}
