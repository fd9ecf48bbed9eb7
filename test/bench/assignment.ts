import type { RawBaseline } from './baseline.ts';
import { Histogram, type HistogramData } from './histogram.ts';
import { measureCpu, startGenerator, startHub, stopAll, type BenchContext } from './launch.ts';
import { check, type ScenarioResult } from './report.ts';

interface LifecycleRun {
  open: { created: number; createErrors: Record<string, number>; completed: number; completedPerSecond: number; createAck: HistogramData; delivery: HistogramData };
  saturation: { completedPerSecond: number; createdPerSecond: number; errors: Record<string, number> };
}

/**
 * Scenario 2: the assignment lifecycle through the SDK. A control client creates work orders
 * (open loop); SDK agents get each pushed, accept, report progress and complete.
 */
export async function runAssignment(ctx: BenchContext, raw: RawBaseline): Promise<ScenarioResult> {
  const started = performance.now();
  const { agents, rate, durationMs, saturation } = ctx.scale.assignment;
  ctx.log(`hub assignment: ${agents} SDK agents at ${rate}/s`);
  const { hub, ready } = await startHub(ctx, 'assignment');
  const generator = await startGenerator('lifecycle');
  try {
    const cpu = await measureCpu({ hub, generator });
    const run = await generator.request<LifecycleRun>('lifecycle.hub', { url: ready.url, agents, rate, durationMs, saturate: saturation });
    const usage = await cpu.end();
    const delivery = Histogram.fromJSON(run.open.delivery).summary();
    const createAck = Histogram.fromJSON(run.open.createAck).summary();
    const errors = Object.values(run.open.createErrors).reduce((a, b) => a + b, 0);
    return {
      name: 'assign',
      title: '2. Assignment lifecycle',
      checks: [
        check(`creation → agent p99 at ${rate}/s, ${agents} agents`, 'ms', delivery.p99, raw.lifecycleDelivery.p99, { max: 10, text: '≤ 10 ms' }),
        check(`creation → agent p50 at ${rate}/s`, 'ms', delivery.p50, raw.lifecycleDelivery.p50),
        check(`creation → agent max at ${rate}/s`, 'ms', delivery.max, raw.lifecycleDelivery.max),
        check(`completed per second at ${rate}/s offered`, 'orders/s', run.open.completedPerSecond, raw.lifecycleCompletedPerSecond),
        check(`completed per second at saturation`, 'orders/s', run.saturation.completedPerSecond, raw.lifecycleSaturationPerSecond),
        check('creation ack p99', 'ms', createAck.p99),
        check('orders not completed or refused', '', run.open.created - run.open.completed + errors, null, { max: 0, text: '0' }),
        check('hub CPU (both phases)', '%', usage.hub ?? 0),
        check('hub event-loop delay p99 (both phases)', 'ms', cpu.loopDelay.hub?.p99 ?? 0),
        check('hub event-loop delay max (both phases)', 'ms', cpu.loopDelay.hub?.max ?? 0),
        check('generator CPU (both phases)', '%', usage.generator ?? 0),
      ],
      details: { ...run, open: { ...run.open, delivery, createAck }, usage, loopDelay: cpu.loopDelay },
      notes: [
        `${agents} SDK agents (connectAgent, maxConcurrentTasks 1) in one generator process with the control client; each task reports progress once and completes.`,
        'The raw column relays the same messages through a bare socket.io server (bare sockets as agents).',
      ],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(generator, hub);
  }
}
