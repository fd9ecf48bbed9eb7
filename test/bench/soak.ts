import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Histogram } from './histogram.ts';
import { dataDir, measureCpu, startGenerator, startHub, stopAll, type BenchContext } from './launch.ts';
import { epochMs } from './open-loop.ts';
import type { BenchChild } from './processes.ts';
import { check, round, type Check, type ScenarioResult } from './report.ts';
import type { SoakRun } from './roles/soak-load.ts';
import type { SummaryReads } from './roles/summary-reads.ts';
import type { Soak } from './scale.ts';

/** What the hub child's `workflows` command made (hub-entry.ts). */
interface Produced {
  finishedIds: string[];
  openIds: string[];
  ms: number;
}

/** One reading of the hub's memory during the soak. */
interface Sample {
  /** When it was due, from the first order's due time (ms). */
  dueMs: number;
  /** When it was taken. */
  atMs: number;
  heapMB: number;
  /** The heap V8 has reserved, and memory outside it (buffers): what RSS holds beside the live heap. */
  heapTotalMB: number;
  externalMB: number;
  rssMB: number;
  /** How long the forced collection held the hub's event loop (and the IPC round trip). */
  gcMs: number;
  workflows: number;
  workOrders: number;
}

const MB = 2 ** 20;
const sleepUntil = (epoch: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, epoch - epochMs())));

/** "8 min" or "96 s". */
function span(ms: number): string {
  return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${round(ms / 1000, 1)} s`;
}

/** Least-squares slope of y over x, and the mean of y. */
export function linearFit(points: Array<[number, number]>): { slope: number; mean: number } {
  const n = points.length;
  const mx = points.reduce((sum, [x]) => sum + x, 0) / n;
  const my = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return { slope: sxx > 0 ? sxy / sxx : 0, mean: my };
}

/**
 * The hub's heap after a full collection, its RSS and what it holds in memory. One collection, not
 * the memory scenario's three: each holds the hub's event loop (0.1–0.4 s at 100 MB on a busy
 * 2-core machine) while the lifecycles go on, and what a second one frees is noise beside a trend.
 */
async function sample(hub: BenchChild, dueMs: number, startEpochMs: number): Promise<Sample> {
  const before = epochMs();
  const memory = await hub.request<NodeJS.MemoryUsage>('gc', { collections: 1 });
  const gcMs = epochMs() - before;
  const census = await hub.request<{ workflows: number; workOrders: number }>('census');
  return { dueMs, atMs: round(before - startEpochMs), heapMB: round(memory.heapUsed / MB, 1), heapTotalMB: round(memory.heapTotal / MB, 1), externalMB: round(memory.external / MB, 1), rssMB: round(memory.rss / MB, 1), gcMs: round(gcMs), ...census };
}

/** Bytes of the journal, the snapshot and the archive folder of a data directory. */
function diskUse(dir: string): { journalMB: number; snapshotMB: number; archiveMB: number } {
  const sizeOf = (path: string): number => (statSync(path).isDirectory() ? readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0) : statSync(path).size);
  let journal = 0;
  let snapshot = 0;
  let archive = 0;
  for (const name of readdirSync(dir)) {
    if (name.endsWith('.journal')) journal += sizeOf(join(dir, name));
    if (name === 'snapshot.json') snapshot += sizeOf(join(dir, name));
    if (name === 'archive') archive += sizeOf(join(dir, name));
  }
  return { journalMB: round(journal / MB, 1), snapshotMB: round(snapshot / MB, 1), archiveMB: round(archive / MB, 1) };
}

/** Lifecycles at a steady rate for the soak's duration, the hub's memory sampled as they run. */
async function soakLifecycles(ctx: BenchContext, s: Soak, generator: BenchChild) {
  const { hub, ready } = await startHub(ctx, 'soak', { keepFinishedMs: s.keepFinishedMs }, ['--expose-gc']);
  try {
    await generator.request('soak.connect', { url: ready.url, agents: s.agents, prefix: 'soak' });
    await generator.request('gc');
    const startEpochMs = epochMs() + 500;
    const samples = [await sample(hub, 0, startEpochMs)];
    const cpu = await measureCpu({ hub, generator });
    const running = generator.request<SoakRun>('soak.run', { rate: s.rate, durationMs: s.durationMs, ordersPerWorkflow: s.ordersPerWorkflow, startEpochMs });
    for (let dueMs = s.sampleEveryMs; dueMs <= s.durationMs; dueMs += s.sampleEveryMs) {
      await sleepUntil(startEpochMs + dueMs);
      const taken = await sample(hub, dueMs, startEpochMs);
      samples.push(taken);
      ctx.log(`soak: at ${span(dueMs)}: heap ${taken.heapMB} MB (of ${taken.heapTotalMB} reserved), RSS ${taken.rssMB} MB, ${taken.workflows} workflows with ${taken.workOrders} orders in memory`);
    }
    const run = await running;
    const usage = await cpu.end();
    const end = await sample(hub, s.durationMs, startEpochMs);
    return { run, samples, end, cpu: usage };
  } finally {
    await generator.request('soak.close').catch(() => undefined);
    await hub.stop(120_000);
  }
}

/**
 * A history of finished workflows, archived; restarts with it and with none, alternating; then
 * workflow.summary of archived workflows on the last hub restarted with the history.
 */
async function historyRestartsAndReads(ctx: BenchContext, s: Soak, generator: BenchChild) {
  const { workflows, ordersPerWorkflow, keepFinishedMs } = s.history;
  const withHistory = dataDir(ctx, 'soak-history');
  const hubs: BenchChild[] = [];
  const start = async (name: string, dir?: string) => {
    const started = await startHub(ctx, name, { keepFinishedMs, ...(dir ? { dataDir: dir } : {}) });
    hubs.push(started.hub);
    return started;
  };
  try {
    const producer = await start('soak-history', withHistory);
    const history = await producer.hub.request<Produced>('workflows', { finished: workflows, ordersPerWorkflow });
    ctx.log(`soak: ${workflows} finished workflows of ${ordersPerWorkflow} orders produced in ${round(history.ms / 1000, 1)} s`);
    const archiveStarted = performance.now();
    let census = await producer.hub.request<{ workflows: number; workOrders: number }>('census');
    // The archiver takes up to 64 workflows a pass, a pass every sweepIntervalMs; one that falls behind is waited for only this long.
    const deadline = archiveStarted + 30_000 + workflows * ordersPerWorkflow * 0.25;
    while (census.workflows > 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      census = await producer.hub.request('census');
    }
    const archiveMs = performance.now() - archiveStarted;
    ctx.log(`soak: ${census.workflows} workflows left in memory after ${round(archiveMs / 1000, 1)} s; stopping cleanly`);
    const stopStarted = performance.now();
    await producer.hub.stop(600_000);
    const stopMs = performance.now() - stopStarted;
    ctx.log(`soak: stopped in ${round(stopMs / 1000, 1)} s`);
    const disk = diskUse(withHistory);

    const starts: Record<'none' | 'history', number[]> = { none: [], history: [] };
    let reads: SummaryReads | undefined;
    for (let r = 0; r < s.restarts; r++) {
      const empty = await start('soak-restart-none');
      starts.none.push(empty.ready.createHubMs);
      await empty.hub.stop();
      const full = await start('soak-restart-history', withHistory);
      starts.history.push(full.ready.createHubMs);
      ctx.log(`soak: restart ${r + 1}/${s.restarts}: ${round(empty.ready.createHubMs)} ms with no history, ${round(full.ready.createHubMs)} ms with it`);
      if (r === s.restarts - 1) {
        // One workflow in memory to read beside the archived ones, made after the restarts were timed.
        const [inMemoryId] = (await full.hub.request<Produced>('workflows', { open: 1, ordersPerWorkflow })).openIds;
        reads = await generator.request<SummaryReads>('summaries.read', { url: full.ready.url, archivedIds: history.finishedIds, inMemoryId, ...s.reads });
      }
      await full.hub.stop(120_000);
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    return { produceMs: history.ms, archiveMs, stopMs, leftInMemory: census, disk, starts, restart: { none: median(starts.none), history: median(starts.history) }, reads: reads! };
  } finally {
    await stopAll(...hubs);
  }
}

/**
 * Scenario 7: the soak. Work-order lifecycles at a steady rate, in workflows that are completed
 * once their orders are done, for ten minutes: the hub's heap after GC must level off as finished
 * workflows leave memory for the archive. Then a history of finished workflows (a million orders)
 * must not slow a restart, and reading an archived workflow's summary must stay quick.
 */
export async function runSoak(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const s = ctx.scale.soak;
  ctx.log(`soak: ${s.rate} lifecycles/s in workflows of ${s.ordersPerWorkflow} for ${span(s.durationMs)}, keepFinishedMs ${s.keepFinishedMs}, heap sampled every ${span(s.sampleEveryMs)}`);
  const historyOrders = s.history.workflows * s.history.ordersPerWorkflow;
  const generator = await startGenerator('soak');
  let soak: Awaited<ReturnType<typeof soakLifecycles>>;
  let later: Awaited<ReturnType<typeof historyRestartsAndReads>>;
  try {
    soak = await soakLifecycles(ctx, s, generator);
    ctx.log(`soak: a history of ${historyOrders.toLocaleString('en-US')} orders, ${s.restarts} restarts each with it and with none, summary reads`);
    later = await historyRestartsAndReads(ctx, s, generator);
  } finally {
    await stopAll(generator);
  }

  const windowFrom = Math.max(s.settleMs, s.durationMs - s.windowMs);
  const window = soak.samples.filter((x) => x.dueMs >= windowFrom);
  const heap = linearFit(window.map((x) => [x.atMs / 60_000, x.heapMB]));
  const rss = linearFit(window.map((x) => [x.atMs / 60_000, x.rssMB]));
  const percentPerMinute = (f: { slope: number; mean: number }) => (f.mean > 0 ? (f.slope / f.mean) * 100 : 0);
  const last = `the last ${span(s.durationMs - windowFrom)}`;
  const lifecycle = Histogram.fromJSON(soak.run.lifecycle).summary();
  const archived = Histogram.fromJSON(later.reads.archived).summary();
  const inMemory = Histogram.fromJSON(later.reads.inMemory).summary();
  const errors = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  const notDone = soak.run.created - soak.run.completed + errors(soak.run.errors) + (soak.run.workflowsCreated - soak.run.workflowsCompleted);
  const historyLabel = historyOrders.toLocaleString('en-US');

  const checks: Check[] = [
    check(`heap after GC, level over ${last} (compared with: before the load)`, 'MB', heap.mean, soak.samples[0]!.heapMB),
    check(`heap after GC, slope over ${last}, of the level`, '%/min', percentPerMinute(heap), null, { max: 2, text: '≤ 2 %/min' }),
    check(`RSS, level over ${last} (compared with: before the load)`, 'MB', rss.mean, soak.samples[0]!.rssMB),
    check(`RSS, slope over ${last}, of the level`, '%/min', percentPerMinute(rss)),
    check(`lifecycles completed per second (${s.rate}/s offered)`, 'orders/s', soak.run.completedPerSecond),
    check('create → completed p99, forced collections included', 'ms', lifecycle.p99),
    check('create → completed p50', 'ms', lifecycle.p50),
    check('orders or workflows not completed, or refused', '', notDone, null, { max: 0, text: '0' }),
    check('hub CPU during the soak', '%', soak.cpu.hub ?? 0),
    check(`workflows in memory at the end (of ${soak.run.workflowsCreated} created)`, '', soak.end.workflows),
    check(`producing the history: ${s.history.workflows} workflows, ${historyLabel} orders, cancelled`, 'ms', later.produceMs),
    check('archiving the history: from the last cancellation until no workflow is left in memory', 'ms', later.archiveMs),
    check(`workflows of the history still in memory when it is stopped (of ${s.history.workflows})`, '', later.leftInMemory.workflows),
    check('stopping the hub that produced the history (clean stop: final snapshot)', 'ms', later.stopMs),
    check(`restart with ${historyLabel} archived orders: createHub → listening (compared with: none)`, 'ms', later.restart.history, later.restart.none, { ratioMax: 1.2, text: '≤ 1.2 × none' }),
    check(`workflow.summary of an archived workflow p99 (compared with: one in memory)`, 'ms', archived.p99, inMemory.p99, { max: 20, text: '≤ 20 ms' }),
    check('workflow.summary of an archived workflow p50 (compared with: one in memory)', 'ms', archived.p50, inMemory.p50),
    check('summary reads refused or unanswered', '', errors(later.reads.errors) + later.reads.unanswered, null, { max: 0, text: '0' }),
  ];
  return {
    name: 'soak',
    title: '7. Soak',
    subject: 'Hub',
    checks,
    details: {
      settings: s,
      samples: soak.samples,
      afterLastWorkflow: soak.end,
      heapFit: { windowFromMs: windowFrom, slopeMBPerMinute: round(heap.slope, 3), levelMB: round(heap.mean, 1) },
      rssFit: { slopeMBPerMinute: round(rss.slope, 3), levelMB: round(rss.mean, 1) },
      run: { ...soak.run, lifecycle, createAck: Histogram.fromJSON(soak.run.createAck).summary() },
      cpu: soak.cpu,
      history: { produceMs: round(later.produceMs), archiveMs: round(later.archiveMs), stopMs: round(later.stopMs), leftInMemory: later.leftInMemory, disk: later.disk },
      restarts: { createHubMs: { none: later.starts.none.map((ms) => round(ms)), history: later.starts.history.map((ms) => round(ms)) } },
      reads: { archived, inMemory, errors: later.reads.errors, unanswered: later.reads.unanswered },
    },
    notes: [
      `${s.rate} work orders/s created in an open loop by a control client, in started workflows of ${s.ordersPerWorkflow.toLocaleString('en-US')}; ${s.agents} agents (bare sockets, one task each) accept each offer and complete it; each workflow is completed once its orders are. The hub runs with keepFinishedMs ${s.keepFinishedMs.toLocaleString('en-US')}: a finished workflow leaves memory for the archive that long after it ends.`,
      `Heap after a forced full collection (the hub runs with --expose-gc; each one holds its event loop, and the latency of the lifecycles due meanwhile counts it) and RSS every ${span(s.sampleEveryMs)}; the level is their mean over ${last}, the slope a least-squares fit over the same samples, as a share of the level per minute. RSS is indicative only: it holds what lies outside the main thread's heap (other threads, pages the allocator keeps). Heap by sample (MB): ${soak.samples.map((x) => x.heapMB).join(', ')}; once every workflow was completed, ${soak.end.heapMB}.`,
      `History: ${s.history.workflows} workflows each given ${s.history.ordersPerWorkflow.toLocaleString('en-US')} orders (workOrder.createMany) and cancelled, in the hub's process through StateWriter.dispatch, keepFinishedMs ${s.history.keepFinishedMs}; on disk after a clean stop: ${later.disk.journalMB} MB of journal, ${later.disk.snapshotMB} MB of snapshot, ${later.disk.archiveMB} MB of archive. Restart: median of ${s.restarts} restarts with the history, after a clean stop, alternating with as many on an empty directory.`,
      `Summary reads: workflow.summary over /control at ${s.reads.rate}/s for ${span(s.reads.durationMs)} on the last hub restarted with the history, alternately a random archived workflow and a pending one of as many orders in memory; open-loop latency, the first ${s.reads.warmupMs} ms not counted.`,
    ],
    durationMs: performance.now() - started,
  };
}
