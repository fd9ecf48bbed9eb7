import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { HubOptionsInput } from '../../server/index.ts';
import { GRANTS } from '../helpers/hub.ts';
import { CLI, startHubProcess, type HubProcess } from '../helpers/process.ts';

/** A free TCP port on loopback, so a restarted hub comes back where its clients reconnect. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A hub run as a child process on a fixed port and data directory, with the test tokens, that
 * can be killed and started again.
 */
export class HubUnderTest {
  current: HubProcess | undefined;

  private constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly configFile: string,
  ) {}

  static async create(dataDir: string, options: HubOptionsInput = {}): Promise<HubUnderTest> {
    const port = await freePort();
    const configFile = join(dataDir, 'hub-config.json');
    writeFileSync(configFile, JSON.stringify({ tokens: GRANTS, logLevel: 'warn', ...options, port, dataDir }));
    return new HubUnderTest(dataDir, port, configFile);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the hub (with `args` beside its config) and resolves once it listens. */
  async start(args: string[] = []): Promise<HubProcess> {
    this.current = await startHubProcess(['--config', this.configFile, ...args]);
    return this.current;
  }

  /** Starts the hub and waits for it to exit, for starts it must refuse: its exit code and what it printed. */
  refusedStart(): { status: number | null; output: string } {
    const run = spawnSync(process.execPath, [...CLI, 'start', '--config', this.configFile], { encoding: 'utf8', timeout: 20_000 });
    return { status: run.status, output: run.stdout + run.stderr };
  }

  /** kill -9: no shutdown, no flush, no snapshot. */
  async crash(): Promise<void> {
    const hub = this.current;
    if (!hub) return;
    hub.child.kill('SIGKILL');
    await hub.exited;
    this.current = undefined;
  }

  /** A clean stop (SIGTERM); resolves with the exit code. */
  async stop(): Promise<number | null> {
    const hub = this.current;
    if (!hub) return 0;
    hub.child.kill('SIGTERM');
    this.current = undefined;
    return hub.exited;
  }
}
