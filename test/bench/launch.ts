import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HubOptionsInput } from '../../server/index.ts';
import { BenchChild, cpuPercent, type Usage } from './processes.ts';
import type { Scale } from './scale.ts';
import { BENCH_GRANTS } from './workload.ts';

/** What every scenario gets from the runner. */
export interface BenchContext {
  scale: Scale;
  /** A folder for data directories and configs; removed after the run. */
  workDir: string;
  /** When set, hubs run under --cpu-prof and write their profiles here. */
  profileDir: string | undefined;
  log(message: string): void;
}

/** What a hub child reports once it listens. */
export interface HubReady {
  url: string;
  processToListeningMs: number;
  createHubMs: number;
}

/** A fresh data directory under the run's work folder. */
export function dataDir(ctx: BenchContext, name: string): string {
  return mkdtempSync(join(ctx.workDir, `${name}-`));
}

/**
 * Starts a hub in its own process (test/bench/hub-entry.ts → createHub) with the bench tokens,
 * warnings-only logging and `options`; under --cpu-prof when the run profiles.
 */
export async function startHub(ctx: BenchContext, name: string, options: HubOptionsInput = {}, nodeArgs: string[] = []): Promise<{ hub: BenchChild; ready: HubReady; spawnToReadyMs: number }> {
  const dir = options.dataDir ?? dataDir(ctx, name);
  const config = join(ctx.workDir, `${name}-${Date.now()}.json`);
  writeFileSync(config, JSON.stringify({ port: 0, tokens: BENCH_GRANTS, logLevel: 'warn', ...options, ...hubOptionsOverride(), dataDir: dir }));
  const profile = profileArgs(ctx, `hub-${name}`);
  const started = performance.now();
  // BENCH_HUB_NODE_ARGS adds node flags to every hub (e.g. --trace-gc) for investigations.
  const { process: hub, ready } = await BenchChild.start<HubReady>(`hub(${name})`, './hub-entry.ts', { args: [config], nodeArgs: [...profile, ...nodeArgs, ...envArgs('BENCH_HUB_NODE_ARGS')] });
  return { hub, ready, spawnToReadyMs: performance.now() - started };
}

/** BENCH_HUB_OPTIONS (JSON): options that override those of every bench hub (e.g. {"snapshotAfterBytes":1e12}), for investigations. */
export function hubOptionsOverride(): HubOptionsInput {
  return JSON.parse(process.env.BENCH_HUB_OPTIONS ?? '{}') as HubOptionsInput;
}

/** Brings dist/ up to date (`npm run build`), so that the compiled CLI measured is this checkout's. */
export function buildPackage(): void {
  const built = spawnSync('npm', ['run', 'build', '--silent'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'inherit' });
  if (built.status !== 0) throw new Error(`npm run build failed (status ${built.status})`);
}

/**
 * Times the compiled CLI (`node bin/switchboard.mjs start`, as an installed package runs it) on
 * `dir` with the bench tokens, from spawning node to its "listening on" line, then stops it:
 * SIGTERM is a clean stop, SIGKILL leaves the directory as it was.
 */
export async function timeCompiledStart(dir: string, stop: 'SIGTERM' | 'SIGKILL'): Promise<number> {
  const bin = fileURLToPath(new URL('../../bin/switchboard.mjs', import.meta.url));
  const started = performance.now();
  const child = spawn(process.execPath, [bin, 'start', '--port', '0', '--data-dir', dir, '--log-level', 'warn'], {
    env: { ...process.env, SWITCHBOARD_TOKENS: JSON.stringify(BENCH_GRANTS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let output = '';
  const listeningMs = await new Promise<number>((resolve, reject) => {
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('listening on')) resolve(performance.now() - started);
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    void exited.then(([code]) => reject(new Error(`switchboard start exited (${code}) before listening:\n${output}`)));
  });
  child.kill(stop);
  await exited;
  return listeningMs;
}

/** The space-separated node flags in environment variable `name`, if any. */
function envArgs(name: string): string[] {
  return process.env[name]?.split(' ').filter(Boolean) ?? [];
}

/** Node flags that profile a server child into its own folder when the run profiles. */
function profileArgs(ctx: BenchContext, name: string): string[] {
  if (!ctx.profileDir) return [];
  mkdirSync(ctx.profileDir, { recursive: true });
  // One folder per server; node names each thread's file (tsx's loader thread writes one too).
  return ['--cpu-prof', `--cpu-prof-dir=${join(ctx.profileDir, `${name}-${Date.now()}`)}`];
}

/** Starts the raw socket.io baseline server in its own process (profiled beside the hubs, to compare). */
export async function startRawServer(ctx: BenchContext, nodeArgs: string[] = []): Promise<{ raw: BenchChild; url: string }> {
  // BENCH_RAW_NODE_ARGS adds node flags to the raw server (e.g. --trace-gc), as BENCH_HUB_NODE_ARGS to hubs.
  const { process: raw, ready } = await BenchChild.start<{ url: string }>('raw-server', './raw-server.ts', { nodeArgs: [...profileArgs(ctx, 'raw'), ...nodeArgs, ...envArgs('BENCH_RAW_NODE_ARGS')] });
  return { raw, url: ready.url };
}

/** Starts a load-generator process. */
export async function startGenerator(name = 'generator'): Promise<BenchChild> {
  // --expose-gc: the generator collects before each measured phase (generator.ts). A 256 MB
  // initial old generation keeps it from collecting again within the phase: without it, the old
  // generation grew ~8 MB in a 5 s progress phase and a mark-compact, with slow requests
  // clustered around it, fell near its end.
  // BENCH_GEN_NODE_ARGS adds node flags to every generator (e.g. --cpu-prof) for investigations.
  return (await BenchChild.start(name, './generator.ts', { nodeArgs: ['--expose-gc', '--initial-old-space-size=256', ...envArgs('BENCH_GEN_NODE_ARGS')] })).process;
}

/**
 * CPU use of several processes over one phase: call `end()` when it is over. `end()` also keeps
 * each process's event-loop delay over the phase in `loopDelay`, and its CPU probe in `cpuProbe`.
 */
export async function measureCpu(processes: Record<string, BenchChild>): Promise<{ end(): Promise<Record<string, number>>; loopDelay: Record<string, Usage['loopDelay']>; cpuProbe: Record<string, Usage['cpuProbe']> }> {
  const names = Object.keys(processes);
  const before = await Promise.all(names.map((n) => processes[n]!.usage()));
  const loopDelay: Record<string, Usage['loopDelay']> = {};
  const cpuProbe: Record<string, Usage['cpuProbe']> = {};
  return {
    loopDelay,
    cpuProbe,
    async end() {
      const after: Usage[] = await Promise.all(names.map((n) => processes[n]!.usage()));
      names.forEach((n, i) => {
        loopDelay[n] = after[i]!.loopDelay;
        cpuProbe[n] = after[i]!.cpuProbe;
      });
      return Object.fromEntries(names.map((n, i) => [n, cpuPercent(before[i]!, after[i]!)]));
    },
  };
}

/** A phase's result, with the server's and the generator's CPU, event-loop delay and CPU probe over it. */
export interface Measured<T> {
  result: T;
  cpu: Record<string, number>;
  loopDelay: Usage['loopDelay'];
  generatorLoopDelay: Usage['loopDelay'];
  cpuProbe: Record<string, Usage['cpuProbe']>;
}

/** Runs one phase against `server`, measuring the server and the generator over that phase only. */
async function measurePhase<T>(server: BenchChild, generator: BenchChild, run: () => Promise<T>): Promise<Measured<T>> {
  const cpu = await measureCpu({ server, generator });
  const result = await run();
  const usage = await cpu.end();
  return { result, cpu: usage, loopDelay: cpu.loopDelay.server!, generatorLoopDelay: cpu.loopDelay.generator!, cpuProbe: cpu.cpuProbe };
}

export type Side = 'raw' | 'hub';

/**
 * `rounds` rounds of a phase, alternating raw and hub, each measured (measurePhase): a slow
 * moment of the machine weighs on both sides alike.
 */
export async function alternateRounds<T>(
  rounds: number,
  servers: Record<Side, BenchChild>,
  generator: BenchChild,
  log: (round: number, side: Side) => void,
  run: (side: Side, round: number) => Promise<T>,
): Promise<Record<Side, Array<Measured<T>>>> {
  const out: Record<Side, Array<Measured<T>>> = { raw: [], hub: [] };
  for (let r = 0; r < rounds; r++) {
    for (const side of ['raw', 'hub'] as const) {
      log(r, side);
      out[side].push(await measurePhase(servers[side], generator, () => run(side, r)));
    }
  }
  return out;
}

/** Stops every child given, ignoring those already gone. */
export async function stopAll(...children: Array<BenchChild | undefined>): Promise<void> {
  await Promise.all(children.map((child) => child?.stop().catch(() => child.kill())));
}
