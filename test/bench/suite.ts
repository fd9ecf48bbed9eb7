import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAssignment } from './assignment.ts';
import { runBaseline, type RawFigures } from './baseline.ts';
import { runBigWorkflow } from './big-workflow.ts';
import { runCluster } from './cluster.ts';
import { runFanout } from './fanout.ts';
import type { BenchContext } from './launch.ts';
import { runMemory } from './memory.ts';
import { runPeer } from './peer.ts';
import { runPersistence } from './persistence.ts';
import { runPlacement } from './placement.ts';
import { runProgress } from './progress.ts';
import { describeMachine, type BenchResult, type ScenarioResult } from './report.ts';
import { runRestart } from './restart.ts';
import { SCALES, type Scale } from './scale.ts';
import { runSoak } from './soak.ts';

/** The scenarios, in the order they run. */
export const SCENARIOS = ['baseline', 'progress', 'assign', 'fanout', 'persistence', 'placement', 'memory', 'restart', 'soak', 'big-workflow', 'cluster', 'peer'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface SuiteOptions {
  scale: Scale['name'];
  only?: readonly ScenarioName[];
  /** How long the soak's lifecycles run, instead of the scale's. */
  soakMinutes?: number;
  /** Run hubs under --cpu-prof, writing profiles here. */
  profileDir?: string;
  /** A word on the machine, e.g. "shared, other jobs running". */
  note?: string;
  command?: string;
  log?: (message: string) => void;
}

/** Runs the chosen scenarios and returns every figure; a scenario that throws is recorded, not fatal. */
export async function runSuite(options: SuiteOptions): Promise<BenchResult> {
  const started = performance.now();
  const selected = new Set<ScenarioName>(options.only?.length ? options.only : SCENARIOS);
  const workDir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
  const log = options.log ?? (() => undefined);
  const base = SCALES[options.scale];
  const scale = options.soakMinutes ? { ...base, soak: { ...base.soak, durationMs: Math.round(options.soakMinutes * 60_000) } } : base;
  const ctx: BenchContext = { scale, workDir, profileDir: options.profileDir, log };
  const result: BenchResult = {
    machine: describeMachine(options.note ?? ''),
    scale: options.scale,
    command: options.command ?? '',
    durationMs: 0,
    scenarios: [],
    failures: [],
  };
  // Raw figures measured by one scenario and shown beside the hub's by a later one.
  const raw: RawFigures = {};
  const steps: Record<ScenarioName, () => Promise<ScenarioResult>> = {
    baseline: () => runBaseline(ctx),
    progress: () => runProgress(ctx, raw),
    assign: () => runAssignment(ctx),
    fanout: () => runFanout(ctx, raw),
    persistence: () => runPersistence(ctx),
    placement: () => runPlacement(ctx),
    memory: () => runMemory(ctx),
    restart: () => runRestart(ctx),
    'big-workflow': () => runBigWorkflow(ctx),
    soak: () => runSoak(ctx),
    cluster: () => runCluster(ctx),
    peer: () => runPeer(ctx),
  };
  try {
    for (const name of SCENARIOS) {
      if (!selected.has(name)) continue;
      log(`— ${name}`);
      try {
        result.scenarios.push(await steps[name]());
      } catch (error) {
        log(`${name} failed: ${(error as Error).stack ?? String(error)}`);
        result.failures.push({ scenario: name, error: (error as Error).message });
      }
    }
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
  result.durationMs = Math.round(performance.now() - started);
  return result;
}
