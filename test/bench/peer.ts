import { merged } from './baseline.ts';
import { Histogram } from './histogram.ts';
import { withTimeout } from './deadline.ts';
import { startGenerator, startHub, startRawServer, stopAll, type BenchContext } from './launch.ts';
import type { BenchChild } from './processes.ts';
import { redisSkipReason, startRedis, type RedisServer } from './redis-server.ts';
import { check, round, type ScenarioResult } from './report.ts';
import type { AwaitedFigures, BulkFigures, OpenFigures } from './roles/peer-load.ts';

const TITLE = '10. Beside BullMQ';
/** The durability each side runs at, stated beside its figures. */
const HUB_DURABILITY = 'journal written, no fsync';
const REDIS_DURABILITY = 'AOF, appendfsync everysec';
/** What the runner adds to a generator's own bound before it gives up on the generator. */
const RUNNER_MARGIN_MS = 30_000;

/** `raw`: the bench's bare socket.io server, for the awaited-progress workload only: the floor under the hub. */
type PeerSideName = 'hub' | 'bullmq' | 'raw';
const SIDES: readonly PeerSideName[] = ['hub', 'bullmq'];
const AWAITED_SIDES: readonly PeerSideName[] = ['hub', 'bullmq', 'raw'];

/**
 * Scenario 10: the hub beside the queue people would pick instead, BullMQ on Debian's
 * redis-server, in the same run: a bulk-created lifecycle, an open loop at 1,000 jobs/s, and one
 * job awaiting progress updates in turn, each in rounds alternating the two sides. Each side's
 * clients run in a generator process of their own (roles/peer-load.ts). Skipped, saying why,
 * when redis-server is not installed.
 */
export async function runPeer(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const skip = redisSkipReason();
  if (skip) {
    ctx.log(`peer: skipped: ${skip}`);
    return { name: 'peer', title: TITLE, skipped: skip, checks: [], details: {}, notes: [], durationMs: performance.now() - started };
  }
  const { rounds, workers, concurrency, bulk, open, progress } = ctx.scale.peer;
  let redis: RedisServer | undefined;
  let hub: BenchChild | undefined;
  let raw: BenchChild | undefined;
  const generators: Partial<Record<PeerSideName, BenchChild>> = {};
  try {
    redis = await startRedis(ctx.workDir);
    ctx.log(`peer: redis-server on port ${redis.port} (pid ${redis.pid}, ${REDIS_DURABILITY}); a hub at its defaults (${HUB_DURABILITY})`);
    const startedHub = await startHub(ctx, 'peer');
    hub = startedHub.hub;
    const startedRaw = await startRawServer(ctx);
    raw = startedRaw.raw;
    for (const side of AWAITED_SIDES) generators[side] = await startGenerator(`peer: ${side} clients`);
    await withTimeout(generators.hub!.request('peer.connect', { side: 'hub', url: startedHub.ready.url, prefix: 'peer' }), 30_000, 'the hub side to connect');
    await withTimeout(generators.bullmq!.request('peer.connect', { side: 'bullmq', port: redis.port }), 30_000, 'the BullMQ side to connect');
    await withTimeout(generators.raw!.request('peer.connect', { side: 'raw', url: startedRaw.url }), 30_000, 'the bare socket.io side to connect');
    const serverPid: Record<PeerSideName, number> = { hub: hub.child.pid!, bullmq: redis.pid, raw: raw.child.pid! };

    /** `rounds` rounds of one workload, each side in turn in each (hub, BullMQ, and raw if it takes part), every one bounded. */
    const alternate = async <T>(what: string, boundMs: number, cmd: string, options: (round: number) => Record<string, unknown>, sides = SIDES) => {
      const out: Record<PeerSideName, T[]> = { hub: [], bullmq: [], raw: [] };
      for (let r = 0; r < rounds; r++) {
        for (const side of sides) {
          ctx.log(`peer: ${what}, round ${r + 1}/${rounds}, ${side}`);
          // The generator's event-loop delay and CPU probe over the phase: a slow moment of the machine shows there.
          await generators[side]!.usage();
          const request = generators[side]!.request<T>(cmd, { ...options(r), serverPid: serverPid[side] });
          const result = await withTimeout(request, boundMs + RUNNER_MARGIN_MS, `${what} (${side}, round ${r + 1})`);
          const usage = await generators[side]!.usage();
          out[side].push({ ...result, generatorLoopDelay: usage.loopDelay, cpuProbe: usage.cpuProbe });
        }
      }
      return out;
    };
    // Each side first runs a small bulk, not counted, so that the first round does not run on code V8 has not optimised yet.
    for (const side of SIDES) {
      ctx.log(`peer: priming ${side} with ${bulk.primeJobs} jobs, not counted`);
      const prime = { kind: 'prime', ...bulk, jobs: bulk.primeJobs, workers, concurrency, serverPid: serverPid[side] };
      await withTimeout(generators[side]!.request('peer.bulk', prime), bulk.boundMs + RUNNER_MARGIN_MS, `${side} to prime`);
    }
    const bulkRuns = await alternate<BulkFigures>(`bulk lifecycle, ${bulk.jobs} jobs`, bulk.boundMs, 'peer.bulk', (r) => ({ kind: `bulk-${r + 1}`, ...bulk, workers, concurrency }));
    const openBound = open.warmupMs + open.durationMs + open.boundMs;
    const openRuns = await alternate<OpenFigures>(`open loop at ${open.rate}/s`, openBound, 'peer.open', (r) => ({ kind: `open-${r + 1}`, ...open, workers, concurrency }));
    const progressRuns = await alternate<AwaitedFigures>(`awaited progress, ${progress.updates} updates`, progress.capMs + RUNNER_MARGIN_MS, 'peer.progress', (r) => ({ kind: `progress-${r + 1}`, ...progress }), AWAITED_SIDES);
    return figures(ctx, bulkRuns, openRuns, progressRuns, started);
  } finally {
    await stopAll(generators.hub, generators.bullmq, generators.raw, hub, raw);
    await redis?.stop();
  }
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** The scenario's checks (hub beside BullMQ, ratios hub / BullMQ), details and notes. */
function figures(
  ctx: BenchContext,
  bulkRuns: Record<PeerSideName, BulkFigures[]>,
  openRuns: Record<PeerSideName, OpenFigures[]>,
  progressRuns: Record<PeerSideName, AwaitedFigures[]>,
  started: number,
): ScenarioResult {
  const { rounds, workers, concurrency, bulk, open, progress } = ctx.scale.peer;
  const both = <T>(pick: (side: PeerSideName) => T): [T, T] => [pick('hub'), pick('bullmq')];
  const jobsPerSecond = both((side) => mean(bulkRuns[side].map((b) => b.perSecond)));
  const cpuPerJob = both((side) => sum(bulkRuns[side].map((b) => b.serverCpuMs)) / sum(bulkRuns[side].map((b) => b.jobs)));
  const generatorPerJob = both((side) => sum(bulkRuns[side].map((b) => b.generatorCpuMs)) / sum(bulkRuns[side].map((b) => b.jobs)));
  const ack = both((side) => merged(openRuns[side].map((o) => o.completionAck)).summary());
  const openCpu = both((side) => mean(openRuns[side].map((o) => o.serverCpuPercent)));
  const updatesPerSecond = both((side) => mean(progressRuns[side].map((p) => p.perSecond)));
  const rawPerSecond = mean(progressRuns.raw.map((p) => p.perSecond));
  const rawCpuPerUpdate = (sum(progressRuns.raw.map((p) => p.serverCpuMs)) * 1000) / sum(progressRuns.raw.map((p) => p.updates));
  const cpuPerUpdate = both((side) => (sum(progressRuns[side].map((p) => p.serverCpuMs)) * 1000) / sum(progressRuns[side].map((p) => p.updates)));
  const capped = AWAITED_SIDES.filter((side) => progressRuns[side].some((p) => p.capped));
  const lost = both((side) => sum(openRuns[side].map((o) => o.created - o.completed + Object.values(o.createErrors).reduce((a, b) => a + b, 0))));
  const rate = open.rate;
  const perRound = <T extends object>(runs: T[]) => runs.map((run) => Object.fromEntries(Object.entries(run).map(([k, v]) => [k, typeof v === 'number' ? round(v, 3) : v])));
  const openDetails = (side: PeerSideName) =>
    openRuns[side].map((o) => ({ ...o, completionAck: Histogram.fromJSON(o.completionAck).summary(), createAck: Histogram.fromJSON(o.createAck).summary(), serverCpuPercent: round(o.serverCpuPercent, 1), generatorCpuPercent: round(o.generatorCpuPercent, 1) }));
  return {
    name: 'peer',
    title: TITLE,
    subject: `Switchboard (${HUB_DURABILITY})`,
    against: `BullMQ (Redis ${REDIS_DURABILITY})`,
    checks: [
      check(`bulk lifecycle: ${bulk.jobs.toLocaleString('en-US')} jobs, ${workers} workers × ${concurrency}, progress awaited twice`, 'jobs/s', ...jobsPerSecond, { ratioMin: 1, text: '≥ 1.0 × BullMQ' }),
      check('server CPU per job, bulk lifecycle (hub vs redis-server)', 'ms', ...cpuPerJob),
      check('generator CPU per job, bulk lifecycle (SDK vs BullMQ clients)', 'ms', ...generatorPerJob),
      check(`completion acked to the worker p50 at ${rate}/s`, 'ms', ack[0].p50, ack[1].p50),
      check(`completion acked to the worker p99 at ${rate}/s`, 'ms', ack[0].p99, ack[1].p99, { ratioMax: 1.5, text: '≤ 1.5 × BullMQ' }),
      check(`completion acked to the worker max at ${rate}/s`, 'ms', ack[0].max, ack[1].max),
      check(`server CPU at ${rate}/s`, '%', ...openCpu),
      check(`jobs not completed or refused at ${rate}/s`, '', ...lost, { max: 0, text: '0' }),
      check(`awaited progress: one job, ${progress.updates.toLocaleString('en-US')} updates in turn`, 'updates/s', ...updatesPerSecond, { ratioMin: 1, text: '≥ 1.0 × BullMQ' }),
      check('server CPU per awaited progress update', 'µs', ...cpuPerUpdate),
      check('awaited progress over bare socket.io (in the Switchboard column): the same requests acked by a server that does nothing else', 'updates/s', rawPerSecond, updatesPerSecond[1]),
      check('server CPU per update, bare socket.io server (in the Switchboard column)', 'µs', rawCpuPerUpdate, cpuPerUpdate[1]),
    ],
    details: {
      durability: { hub: HUB_DURABILITY, bullmq: `Redis ${REDIS_DURABILITY}` },
      hub: { bulk: perRound(bulkRuns.hub), open: { completionAck: ack[0], rounds: openDetails('hub') }, progress: perRound(progressRuns.hub) },
      bullmq: { bulk: perRound(bulkRuns.bullmq), open: { completionAck: ack[1], rounds: openDetails('bullmq') }, progress: perRound(progressRuns.bullmq) },
      raw: { progress: perRound(progressRuns.raw) },
    },
    notes: [
      `The hub at its defaults (durability: ${HUB_DURABILITY}) beside BullMQ on Debian's redis-server, started by the bench on a loopback port with \`--appendonly yes --appendfsync everysec --save ""\` (durability: ${REDIS_DURABILITY}). Both keep finished jobs. Each side's clients run in a generator process of their own: the SDK (a control client; agents by \`connectAgent\` at their default options, \`maxConcurrentTasks\` ${concurrency}), or BullMQ (a Queue; Worker instances, \`concurrency\` ${concurrency}). Ratios are hub / BullMQ.`,
      `Bulk lifecycle: ${bulk.jobs.toLocaleString('en-US')} jobs created ${bulk.chunk} at a time (the hub: \`createWorkOrders\` in one started workflow; BullMQ: \`addBulk\`), then ${workers} workers start (agents register their handler; Workers \`run()\`). The handler awaits progress twice (\`ctx.progress\`; \`job.updateProgress\`) and returns. Jobs/s run from the workers' start to the last completion acknowledged; server CPU (the hub's process; redis-server, read from /proc) over the same time.`,
      `Open loop: jobs created one at a time at ${rate}/s (\`createWorkOrder\`; \`queue.add\`) for ${open.durationMs / 1000} s after a ${open.warmupMs / 1000} s warm-up at the same rate, not counted; the workers as above, already running. Latency runs from each job's due time to its completion acknowledged to the worker: the agent's \`report\` event (the \`task.complete\` ack), the Worker's \`completed\` event (after \`moveToFinished\` returns).`,
      `Awaited progress: one job whose handler awaits ${progress.updates.toLocaleString('en-US')} progress updates one after another (percentage and message); updates/s and server CPU from the first sent to the last acknowledged, stopped after ${progress.capMs / 1000} s if not all were sent. The same requests are also sent, in the same rounds, to the bench's bare socket.io server (raw-server.ts), which acks each with an envelope and does nothing else: the floor a hub on socket.io stands on.` +
        (capped.length ? ` **Stopped by that bound on ${capped.join(' and ')}**: the rate is over the updates sent.` : ''),
      `Each round in the JSON has its generator's event-loop delay and CPU probe (µs for a fixed piece of work, cpu-probe.ts): a round the machine slowed shows there.`,
      `${rounds} round${rounds === 1 ? '' : 's'} of each workload, alternating hub and BullMQ, after ${bulk.primeJobs.toLocaleString('en-US')} jobs run the bulk way on each side, not counted; rates are the mean of the rounds, CPU per job the total over the rounds.`,
    ],
    durationMs: performance.now() - started,
  };
}
