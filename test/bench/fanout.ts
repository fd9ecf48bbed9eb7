import type { RawFigures } from './baseline.ts';
import { Histogram, type HistogramData } from './histogram.ts';
import { measureCpu, startGenerator, stopAll, type BenchContext } from './launch.ts';
import { epochMs } from './open-loop.ts';
import type { BenchChild } from './processes.ts';
import { ProgressRig } from './progress.ts';
import { check, type ScenarioResult } from './report.ts';

/**
 * Scenario 3: monitor fan-out. While agents stream progress at the progress scenario's rate,
 * 20 and then 100 subscribers (bare sockets in their own process) follow the workflow; each
 * measures staleness, from a request's intended send time until a patch showing it arrives.
 */
export async function runFanout(ctx: BenchContext, raw: RawFigures): Promise<ScenarioResult> {
  const started = performance.now();
  const { agents, rate, warmupMs } = ctx.scale.progress;
  const { subscribers, durationMs, primeMs } = ctx.scale.fanout;
  ctx.log(`hub fan-out: ${agents} agents at ${rate}/s`);
  const rig = await ProgressRig.start(ctx, 'fanout', agents);
  let monitors: BenchChild | undefined;
  const checks = [];
  const details: Record<string, unknown> = {};
  try {
    monitors = await startGenerator('monitors');
    // The load once before any subscriber, not counted: in its first seconds the hub runs code V8
    // has not optimised yet, and its loop stalls for hundreds of milliseconds at a time.
    ctx.log(`hub fan-out: priming the hub for ${primeMs} ms, not counted`);
    await rig.progress('prime', rate, primeMs, 0);
    for (const count of subscribers) {
      ctx.log(`hub fan-out: ${count} subscribers`);
      await monitors.request('monitors.connect', { url: rig.url, count, doc: rig.workflowId });
      const run = `f${count}`;
      // Both generators collect before the schedule is set, so that neither starts it late.
      await Promise.all([rig.agents.request('gc'), monitors.request('gc')]);
      const startEpochMs = epochMs() + 300;
      const firstIndex = Math.round((rate * warmupMs) / 1000);
      const total = firstIndex + Math.round((rate * durationMs) / 1000);
      await monitors.request('monitors.arm', { run, startEpochMs, rate, agents: rig.agentCount, total, firstIndex });
      const cpu = await measureCpu({ hub: rig.hub, agents: rig.agents, monitors });
      const open = await rig.progress(run, rate, durationMs, warmupMs, startEpochMs);
      // Patches leave the hub at most one patch interval after the last commit.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const usage = await cpu.end();
      const seen = await monitors.request<{ staleness: HistogramData; patches: number; resyncs: number; unseen: number }>('monitors.collect');
      await monitors.request('monitors.close');
      const staleness = Histogram.fromJSON(seen.staleness).summary();
      const ack = Histogram.fromJSON(open.latency).summary();
      const last = count === subscribers[subscribers.length - 1];
      checks.push(
        check(`staleness p99, ${count} subscribers`, 'ms', staleness.p99, null, last ? { max: 250, text: '≤ 250 ms' } : undefined),
        check(`staleness p50, ${count} subscribers`, 'ms', staleness.p50),
        check(`staleness max, ${count} subscribers`, 'ms', staleness.max),
        check(`progress ack p99 meanwhile, ${count} subscribers (raw: echo, no subscribers)`, 'ms', ack.p99, raw.echoLatency?.p99 ?? null),
        check(`hub CPU, ${count} subscribers`, '%', usage.hub ?? 0),
        check(`hub event-loop delay max, ${count} subscribers`, 'ms', cpu.loopDelay.hub?.max ?? 0),
        check(`subscriber process CPU, ${count} subscribers`, '%', usage.monitors ?? 0),
        check(`subscriber process event-loop delay max, ${count} subscribers`, 'ms', cpu.loopDelay.monitors?.max ?? 0),
        check(`agent generator CPU, ${count} subscribers`, '%', usage.agents ?? 0),
        check(`changes never seen or resyncs, ${count} subscribers`, '', seen.unseen + seen.resyncs, null, { max: 0, text: '0' }),
      );
      details[`subscribers${count}`] = { staleness, ack, usage, loopDelay: cpu.loopDelay, patches: seen.patches, resyncs: seen.resyncs, unseen: seen.unseen, errors: open.errors, unanswered: open.unanswered };
    }
  } finally {
    await stopAll(monitors);
    await rig.stop();
  }
  return {
    name: 'fanout',
    title: '3. Monitor fan-out',
    checks,
    details,
    notes: [
      `Progress at ${rate}/s from ${agents} agents while subscribers follow the workflow; the hub coalesces patches per 25 ms (patchIntervalMs).`,
      'Staleness counts every request, including those a later one superseded within a patch interval.',
    ],
    durationMs: performance.now() - started,
  };
}
