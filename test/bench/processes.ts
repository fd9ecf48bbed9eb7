import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startCpuProbe } from './cpu-probe.ts';

/** A request over IPC to a bench child process, and its reply. */
export interface IpcRequest {
  id: number;
  cmd: string;
  [key: string]: unknown;
}
type IpcReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** A process's CPU (process.cpuUsage()), event-loop delay and CPU probe since the previous reading. */
export interface Usage {
  cpu: NodeJS.CpuUsage;
  /** performance.now() in the child when it answered (ms). */
  at: number;
  /** The child's event-loop delay since the previous reading (ms): its own stalls, GC included. */
  loopDelay: { p50: number; p99: number; max: number };
  /** How long the CPU probe's fixed work took since the previous reading (µs; cpu-probe.ts). */
  cpuProbe: { p50: number; p90: number; p99: number };
}

/** The CPU share (100 = one core) a process used between two usage readings. */
export function cpuPercent(before: Usage, after: Usage): number {
  const micros = after.cpu.user - before.cpu.user + (after.cpu.system - before.cpu.system);
  return Math.round((micros / 10 / Math.max(1, after.at - before.at)) * 10) / 10;
}

/**
 * A bench child process (hub, raw socket.io server or load generator): TypeScript run through
 * tsx's loader, driven by request/reply messages over the IPC channel.
 */
export class BenchChild {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly exited: Promise<number | null>;
  private stderr = '';

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    child.on('message', (message: IpcReply | { event: string }) => {
      if (!('id' in message)) return;
      const waiter = this.waiting.get(message.id);
      if (!waiter) return;
      this.waiting.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(`${this.name}: ${message.error}`));
    });
    void this.exited.then((code) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`${this.name} exited (${code}) with requests pending\n${this.stderr}`));
      this.waiting.clear();
    });
  }

  /**
   * Starts `entry` (a .ts file beside this one) and waits for its `ready` message, whose payload
   * it resolves with. `nodeArgs` go to node (e.g. --expose-gc, --cpu-prof).
   */
  static async start<T = unknown>(name: string, entry: string, options: { args?: string[]; nodeArgs?: string[] } = {}): Promise<{ process: BenchChild; ready: T }> {
    const file = fileURLToPath(new URL(entry, import.meta.url));
    const child = fork(file, options.args ?? [], {
      execArgv: ['--import', 'tsx', ...(options.nodeArgs ?? [])],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    const process_ = new BenchChild(name, child);
    const ready = await new Promise<T>((resolve, reject) => {
      const onMessage = (message: { event?: string; payload?: T }) => {
        if (message.event !== 'ready') return;
        child.off('message', onMessage);
        resolve(message.payload as T);
      };
      child.on('message', onMessage);
      void process_.exited.then((code) => reject(new Error(`${name} exited (${code}) before it was ready\n${process_.stderr}`)));
    });
    return { process: process_, ready };
  }

  /** Sends a command and resolves with the child's result. */
  request<T = unknown>(cmd: string, payload: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, cmd, ...payload });
    });
  }

  /** CPU, event-loop delay and CPU probe since the previous reading. */
  usage(): Promise<Usage> {
    return this.request<Usage>('usage');
  }

  /** Asks the child to finish and exit; kills it if it has not after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.request('exit').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** kill -9. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

type Handler = (request: IpcRequest) => unknown;

/**
 * The child's side: answers requests with `handlers`, plus `usage` (CPU, memory) and `exit`
 * (runs `onExit`, then exits so --cpu-prof can write its profile). Reports `ready` with `payload`.
 */
export function serveParent(handlers: Record<string, Handler>, payload: unknown, onExit: () => Promise<void> | void = () => undefined): void {
  const send = (message: unknown) => process.send?.(message);
  const delay = monitorEventLoopDelay({ resolution: 2 });
  delay.enable();
  const probe = startCpuProbe();
  const all: Record<string, Handler> = {
    usage: (): Usage => {
      const ms = (ns: number) => Math.round(ns / 1e4) / 100;
      const loopDelay = { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max) };
      delay.reset();
      return { cpu: process.cpuUsage(), at: performance.now(), loopDelay, cpuProbe: probe.take() };
    },
    exit: async () => {
      await onExit();
      setImmediate(() => process.exit(0));
      return null;
    },
    ...handlers,
  };
  process.on('message', (request: IpcRequest) => {
    const handler = all[request.cmd];
    if (!handler) return send({ id: request.id, ok: false, error: `unknown command ${request.cmd}` });
    Promise.resolve()
      .then(() => handler(request))
      .then(
        (result) => send({ id: request.id, ok: true, result: result ?? null }),
        (error: Error) => send({ id: request.id, ok: false, error: error.stack ?? String(error) }),
      );
  });
  // The parent going away must not leave a hub or a generator behind.
  process.on('disconnect', () => process.exit(0));
  send({ event: 'ready', payload });
}
