import { meanCpu, merged } from './baseline.ts';
import type { HistogramData } from './histogram.ts';
import { measureCpu, startGenerator, startHub, startRawServer, stopAll, type BenchContext } from './launch.ts';
import type { BenchChild, Usage } from './processes.ts';
import { check, type ScenarioResult } from './report.ts';

interface LifecycleRun {
  open: {
    created: number;
    createErrors: Record<string, number>;
    completed: number;
    completedPerSecond: number;
    createAck: HistogramData;
    delivery: HistogramData;
    generatorLoopDelay: { p99: number; max: number };
  };
  saturation: { completedPerSecond: number; createdPerSecond: number; errors: Record<string, number> };
}

interface Round {
  run: LifecycleRun;
  cpu: Record<string, number>;
  loopDelay: Usage['loopDelay'];
  generatorLoopDelay: Usage['loopDelay'];
  cpuProbe: Record<string, Usage['cpuProbe']>;
}

/**
 * Scenario 2: the assignment lifecycle through the SDK. A control client creates work orders
 * (open loop); SDK agents get each pushed, accept, report progress and complete. The raw column
 * relays the same messages through a bare socket.io server, in rounds alternating with the hub's.
 */
export async function runAssignment(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { agents, rate, durationMs, warmupMs, saturation, rounds } = ctx.scale.assignment;
  ctx.log(`assignment: ${agents} agents at ${rate}/s, hub and raw`);
  const { hub, ready } = await startHub(ctx, 'assignment');
  let raw: BenchChild | undefined;
  let generator: BenchChild | undefined;
  try {
    const rawStarted = await startRawServer(ctx);
    raw = rawStarted.raw;
    generator = await startGenerator('lifecycle');
    const sides = { raw: { server: raw, url: rawStarted.url, command: 'lifecycle.raw' }, hub: { server: hub, url: ready.url, command: 'lifecycle.hub' } } as const;
    const results: Record<'raw' | 'hub', Round[]> = { raw: [], hub: [] };
    for (let r = 0; r < rounds; r++) {
      for (const side of ['raw', 'hub'] as const) {
        ctx.log(`assignment: round ${r + 1}/${rounds}, ${side}`);
        const { server, url, command } = sides[side];
        const cpu = await measureCpu({ server, generator });
        const run = await generator.request<LifecycleRun>(command, {
          url,
          agents,
          prefix: `life${r}`,
          rate,
          durationMs: durationMs / rounds,
          warmupMs,
          saturate: { ...saturation, durationMs: saturation.durationMs / rounds },
        });
        results[side].push({ run, cpu: await cpu.end(), loopDelay: cpu.loopDelay.server!, generatorLoopDelay: cpu.loopDelay.generator!, cpuProbe: cpu.cpuProbe });
      }
    }
    const delivery = (side: 'raw' | 'hub') => merged(results[side].map((r) => r.run.open.delivery)).summary();
    const mean = (side: 'raw' | 'hub', pick: (run: LifecycleRun) => number) => results[side].reduce((sum, r) => sum + pick(r.run), 0) / rounds;
    const [hubDelivery, rawDelivery] = [delivery('hub'), delivery('raw')];
    const hubAck = merged(results.hub.map((r) => r.run.open.createAck)).summary();
    const rawAck = merged(results.raw.map((r) => r.run.open.createAck)).summary();
    const missing = results.hub.reduce((n, r) => n + r.run.open.created - r.run.open.completed + Object.values(r.run.open.createErrors).reduce((a, b) => a + b, 0), 0);
    const [hubCpu, rawCpu] = [meanCpu(results.hub.map((r) => r.cpu)), meanCpu(results.raw.map((r) => r.cpu))];
    return {
      name: 'assign',
      title: '2. Assignment lifecycle',
      checks: [
        check(`creation → agent p99 at ${rate}/s, ${agents} agents`, 'ms', hubDelivery.p99, rawDelivery.p99, { max: 10, text: '≤ 10 ms' }),
        check(`creation → agent p50 at ${rate}/s`, 'ms', hubDelivery.p50, rawDelivery.p50),
        check(`creation → agent max at ${rate}/s`, 'ms', hubDelivery.max, rawDelivery.max),
        check(`creation ack p99 at ${rate}/s`, 'ms', hubAck.p99, rawAck.p99),
        check(`completed per second at ${rate}/s offered`, 'orders/s', mean('hub', (r) => r.open.completedPerSecond), mean('raw', (r) => r.open.completedPerSecond)),
        check('completed per second at saturation', 'orders/s', mean('hub', (r) => r.saturation.completedPerSecond), mean('raw', (r) => r.saturation.completedPerSecond)),
        check('orders not completed or refused', '', missing, null, { max: 0, text: '0' }),
        check('server CPU (both phases)', '%', hubCpu.server ?? 0, rawCpu.server ?? null),
        check('generator CPU (both phases)', '%', hubCpu.generator ?? 0, rawCpu.generator ?? null),
        check('server event-loop delay max (both phases)', 'ms', Math.max(...results.hub.map((r) => r.loopDelay.max)), Math.max(...results.raw.map((r) => r.loopDelay.max))),
        check(`generator event-loop delay max at ${rate}/s`, 'ms', Math.max(...results.hub.map((r) => r.run.open.generatorLoopDelay.max)), Math.max(...results.raw.map((r) => r.run.open.generatorLoopDelay.max))),
      ],
      details: {
        hub: { delivery: hubDelivery, createAck: hubAck, rounds: results.hub.map((r) => ({ open: { ...r.run.open, delivery: undefined, createAck: undefined }, saturation: r.run.saturation, cpu: r.cpu, loopDelay: r.loopDelay, generatorLoopDelay: r.generatorLoopDelay, cpuProbe: r.cpuProbe })) },
        raw: { delivery: rawDelivery, createAck: rawAck, rounds: results.raw.map((r) => ({ open: { ...r.run.open, delivery: undefined, createAck: undefined }, saturation: r.run.saturation, cpu: r.cpu, loopDelay: r.loopDelay, generatorLoopDelay: r.generatorLoopDelay, cpuProbe: r.cpuProbe })) },
      },
      notes: [
        `${agents} SDK agents (connectAgent, maxConcurrentTasks 1) in one generator process with the control client; each task reports progress once and completes. The saturation phase keeps ${saturation.concurrency} creations in flight.`,
        `The raw column relays the same messages through a bare socket.io server (bare sockets as agents); ${rounds} rounds alternate raw and hub, new agents each round. The first ${warmupMs} ms of each open-loop phase are a warm-up at the same rate, not counted.`,
      ],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(generator, raw, hub);
  }
}
