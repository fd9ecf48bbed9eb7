import { meanCpu, merged } from './baseline.ts';
import { Histogram, type HistogramData } from './histogram.ts';
import { alternateRounds, startGenerator, startHub, startRawServer, stopAll, type BenchContext, type Measured, type Side } from './launch.ts';
import type { BenchChild } from './processes.ts';
import { check, type ScenarioResult } from './report.ts';
import type { OpenLifecycle, SaturatedLifecycle } from './roles/lifecycle.ts';

/**
 * Scenario 2: the assignment lifecycle through the SDK. A control client creates work orders
 * (open loop); SDK agents get each pushed, accept, report progress and complete. The raw column
 * relays the same messages through a bare socket.io server, in rounds alternating with the hub's.
 */
export async function runAssignment(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { agents, rate, durationMs, warmupMs, primeMs, saturation, rounds } = ctx.scale.assignment;
  ctx.log(`assignment: ${agents} agents at ${rate}/s, hub and raw`);
  const { hub, ready } = await startHub(ctx, 'assignment');
  let raw: BenchChild | undefined;
  let generator: BenchChild | undefined;
  try {
    const rawStarted = await startRawServer(ctx);
    raw = rawStarted.raw;
    const driver = await startGenerator('lifecycle');
    generator = driver;
    const servers = { raw, hub };
    const urls = { raw: rawStarted.url, hub: ready.url };
    for (const side of ['raw', 'hub'] as const) await driver.request('lifecycle.connect', { side, url: urls[side], agents, prefix: side });
    // Each side first runs the load once, not counted: on code V8 has not optimised yet, the hub
    // needs a third more CPU, and the 1 s warm-up inside a round is too short to hide it.
    for (const side of ['raw', 'hub'] as const) {
      ctx.log(`assignment: priming ${side} for ${primeMs} ms, not counted`);
      await driver.request('lifecycle.open', { side, rate, durationMs: primeMs, warmupMs: 0 });
    }
    const log = (what: string) => (r: number, side: Side) => ctx.log(`assignment: round ${r + 1}/${rounds}, ${side}: ${what}`);
    // Every open-loop round runs before any saturation, as in the progress scenario: a saturated
    // hub promoted its in-flight requests and thousands of new orders into the old generation,
    // and the open loop that followed it in the same round met the scavenges and mark-compact
    // that came of it.
    const open = await alternateRounds(rounds, servers, driver, log(`${rate}/s`), (side) =>
      driver.request<OpenLifecycle>('lifecycle.open', { side, rate, durationMs: durationMs / rounds, warmupMs }),
    );
    const sat = await alternateRounds(rounds, servers, driver, log('saturation'), (side) =>
      driver.request<SaturatedLifecycle>('lifecycle.saturate', { side, ...saturation, durationMs: saturation.durationMs / rounds }),
    );
    const summary = (side: Side, pick: (run: OpenLifecycle) => HistogramData) => merged(open[side].map((m) => pick(m.result))).summary();
    const [hubDelivery, rawDelivery] = [summary('hub', (r) => r.delivery), summary('raw', (r) => r.delivery)];
    const [hubAck, rawAck] = [summary('hub', (r) => r.createAck), summary('raw', (r) => r.createAck)];
    const mean = <T>(runs: Array<Measured<T>>, pick: (run: T) => number) => runs.reduce((sum, m) => sum + pick(m.result), 0) / runs.length;
    const errors = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
    const missing = open.hub.reduce((n, m) => n + m.result.created - m.result.completed + errors(m.result.createErrors), 0) + sat.hub.reduce((n, m) => n + errors(m.result.errors), 0);
    const cpu = (runs: Array<Measured<unknown>>) => meanCpu(runs.map((m) => m.cpu));
    const [hubCpu, rawCpu, hubSatCpu, rawSatCpu] = [cpu(open.hub), cpu(open.raw), cpu(sat.hub), cpu(sat.raw)];
    const worst = (side: Side, pick: (m: Measured<OpenLifecycle>) => number) => Math.max(...open[side].map(pick));
    const perRound = (side: Side) =>
      open[side].map((m, r) => ({
        delivery: Histogram.fromJSON(m.result.delivery).summary(),
        createAck: Histogram.fromJSON(m.result.createAck).summary(),
        sendLag: m.result.sendLag,
        created: m.result.created,
        completed: m.result.completed,
        createErrors: m.result.createErrors,
        cpu: m.cpu,
        loopDelay: m.loopDelay,
        generatorLoopDelay: m.generatorLoopDelay,
        cpuProbe: m.cpuProbe,
        saturation: { ...sat[side][r]!.result, cpu: sat[side][r]!.cpu, loopDelay: sat[side][r]!.loopDelay },
      }));
    return {
      name: 'assign',
      title: '2. Assignment lifecycle',
      checks: [
        check(`creation → agent p99 at ${rate}/s, ${agents} agents`, 'ms', hubDelivery.p99, rawDelivery.p99, { max: 10, text: '≤ 10 ms' }),
        check(`creation → agent p50 at ${rate}/s`, 'ms', hubDelivery.p50, rawDelivery.p50),
        check(`creation → agent max at ${rate}/s`, 'ms', hubDelivery.max, rawDelivery.max),
        check(`creation ack p99 at ${rate}/s`, 'ms', hubAck.p99, rawAck.p99),
        check(`completed per second at ${rate}/s offered`, 'orders/s', mean(open.hub, (r) => r.completedPerSecond), mean(open.raw, (r) => r.completedPerSecond)),
        check('completed per second at saturation', 'orders/s', mean(sat.hub, (r) => r.completedPerSecond), mean(sat.raw, (r) => r.completedPerSecond), { ratioMin: 0.6, text: '≥ 0.6 × the raw relay' }),
        check('orders not completed or refused', '', missing, null, { max: 0, text: '0' }),
        check(`server CPU at ${rate}/s`, '%', hubCpu.server ?? 0, rawCpu.server ?? null),
        check(`generator CPU at ${rate}/s`, '%', hubCpu.generator ?? 0, rawCpu.generator ?? null),
        check('server CPU at saturation', '%', hubSatCpu.server ?? 0, rawSatCpu.server ?? null),
        check(`server event-loop delay p99 at ${rate}/s (worst round)`, 'ms', worst('hub', (m) => m.loopDelay.p99), worst('raw', (m) => m.loopDelay.p99)),
        check(`server event-loop delay max at ${rate}/s`, 'ms', worst('hub', (m) => m.loopDelay.max), worst('raw', (m) => m.loopDelay.max)),
        check(`generator event-loop delay max at ${rate}/s`, 'ms', worst('hub', (m) => m.generatorLoopDelay.max), worst('raw', (m) => m.generatorLoopDelay.max)),
      ],
      details: {
        hub: { delivery: hubDelivery, createAck: hubAck, rounds: perRound('hub') },
        raw: { delivery: rawDelivery, createAck: rawAck, rounds: perRound('raw') },
      },
      notes: [
        `${agents} SDK agents (connectAgent, maxConcurrentTasks 1) in one generator process with the control client; each task reports progress once and completes. The saturation phase keeps ${saturation.concurrency} creations in flight.`,
        `The raw column relays the same messages through a bare socket.io server (bare sockets as agents). ${rounds} open-loop rounds alternate raw and hub, then ${rounds} saturation rounds; each side keeps its agents throughout. The first ${warmupMs} ms of each open-loop phase are a warm-up at the same rate, not counted.`,
      ],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(generator, raw, hub);
  }
}
