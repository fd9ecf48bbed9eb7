/**
 * The baseline: a bare socket.io server with the hub's namespaces and transport options, in its
 * own process like the hub. It does the least a server can do for each request (ack it with an
 * envelope) and for each push (emit with an ack), so the difference to the hub is what the hub
 * costs. Started by BenchChild.start('raw', './raw-server.ts').
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import { runClosedLoop, runOpenLoop } from './open-loop.ts';
import { serveParent } from './processes.ts';

/** An offer of the same shape and size as the hub's `assignment` push. */
function sampleAssignment(n: number) {
  return {
    workflowId: 'wf_AAAAAAAAAAAA',
    workOrderId: `wo_${String(n).padStart(12, '0')}`,
    attemptToken: `att_${String(n).padStart(12, '0')}`,
    attempt: 1,
    taskType: 'bench.work',
    description: `bench order ${n}`,
    input: { n },
    inputs: [],
    priority: 'normal',
    requirements: [],
    checkpoint: null,
    acceptMs: 600_000,
    leaseMs: 86_400_000,
  };
}

const http = createServer();
const io = new Server(http, { maxHttpBufferSize: 1024 * 1024, serveClient: false });
const agents: Socket[] = [];
let nextAgent = 0;
let pushed = 0;

/** Every request on every namespace is acked with a success envelope, as the hub acks. */
function echo(socket: Socket): void {
  socket.onAny((_event: string, ...args: unknown[]) => {
    const ack = args[args.length - 1];
    if (typeof ack === 'function') ack({ ok: true, data: { version: 1 } });
  });
}

io.of('/agent').on('connection', (socket) => {
  agents.push(socket);
  socket.on('disconnect', () => agents.splice(agents.indexOf(socket), 1));
  echo(socket);
});
io.of('/monitor').on('connection', echo);
/** A work order "created" here is acked and pushed to the next agent: the hub's assignment path without the hub. */
io.of('/control').on('connection', (socket) => {
  socket.on('workOrder.create', (payload: { input?: unknown }, ack: (reply: unknown) => void) => {
    const agent = agents[nextAgent++ % Math.max(1, agents.length)];
    agent?.emit('assignment', { ...sampleAssignment(pushed++), input: payload?.input ?? null }, () => undefined);
    ack({ ok: true, data: { version: pushed, item: { id: `wo_${pushed}` } } });
  });
});

/** One push to the next agent, acked. */
function pushOne(n: number, done: (errorCode?: string) => void): void {
  const agent = agents[n % agents.length];
  if (!agent) return done('NO_AGENT');
  agent.timeout(30_000).emit('assignment', sampleAssignment(n), (error: Error | null) => done(error ? 'TIMEOUT' : undefined));
}

http.listen(0, '127.0.0.1');
await once(http, 'listening');
const gc = (globalThis as { gc?: () => void }).gc;

serveParent(
  {
    /** Open-loop pushes with ack, round-robin over the connected agents. */
    push: async (request) => {
      const result = await runOpenLoop({ rate: Number(request.rate), durationMs: Number(request.durationMs), warmupMs: Number(request.warmupMs ?? 0), send: (i, _t, done) => pushOne(i, done) });
      return { ...result, latency: result.latency.toJSON(), sendLag: result.sendLag.toJSON(), agents: agents.length };
    },
    /** Pushes with ack at saturation: `concurrency` in flight. */
    pushSaturate: async (request) => {
      const result = await runClosedLoop({
        concurrency: Number(request.concurrency),
        durationMs: Number(request.durationMs),
        warmupMs: Number(request.warmupMs),
        send: pushOne,
      });
      return { ...result, latency: result.latency.toJSON(), agents: agents.length };
    },
    gc: () => {
      if (!gc) throw new Error('start with --expose-gc');
      for (let i = 0; i < 3; i++) gc();
      return process.memoryUsage();
    },
  },
  { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}` },
  () => new Promise<void>((done) => io.close(() => done())),
);
