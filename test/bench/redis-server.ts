import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { withTimeout } from './deadline.ts';

/** Debian's Redis (`apt-get install redis-server`), which BullMQ runs on in the peer scenario. */
export const REDIS_SERVER = '/usr/bin/redis-server';

/** How long redis-server may take to accept connections, and to exit once told. */
const START_MS = 20_000;
const STOP_MS = 10_000;

/** A redis-server this process started: its port, its pid, and how to stop it. */
export interface RedisServer {
  port: number;
  pid: number;
  /** Folder of its append-only file. */
  dir: string;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s; removes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Why the peer scenario cannot run here, or undefined when redis-server is installed. */
export function redisSkipReason(): string | undefined {
  return existsSync(REDIS_SERVER) ? undefined : `${REDIS_SERVER} is not installed (Debian: apt-get install redis-server)`;
}

/** A free loopback port: the one the OS gives a listener on port 0, released at once. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * Starts redis-server in the foreground on a free loopback port with a fresh folder under
 * `parent`: AOF on with `appendfsync everysec` (what a BullMQ deployment that keeps its jobs
 * runs), no RDB snapshots. Resolves once it accepts connections. If this process exits before
 * stop(), the server is killed with it.
 */
export async function startRedis(parent: string): Promise<RedisServer> {
  const dir = mkdtempSync(join(parent, 'redis-'));
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no'];
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const read = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
      if (output.includes('Ready to accept connections')) resolve();
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('error', reject);
    void exited.then(([code]) => reject(new Error(`redis-server exited (${code}) before accepting connections:\n${output}`)));
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
        await exited;
        clearTimeout(timer);
      }
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    await withTimeout(ready, START_MS, 'redis-server to accept connections');
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, pid: child.pid!, dir, stop };
}
