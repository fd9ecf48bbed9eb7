import { describe, expect, it, onTestFinished } from 'vitest';
import { ask, openSockets } from './bench/roles/agent-pool.ts';
import { patchTextParser, scanProgress } from './bench/roles/monitor-pool.ts';
import { agent, control, startHub, TOKENS } from './helpers/hub.ts';
import { Histogram } from './bench/histogram.ts';
import { runClosedLoop, runOpenLoop } from './bench/open-loop.ts';
import { FIGURES_END, FIGURES_START, toMarkdown, toText, withFigures } from './bench/report.ts';
import { SCALES } from './bench/scale.ts';
import { linearFit } from './bench/soak.ts';
import { runSuite } from './bench/suite.ts';

/** Timing targets belong to `npm run bench`; these only keep the suite working. */
describe('benchmark suite (smoke)', () => {
  it('reports percentiles within 1 % of the exact ones, and survives a trip through JSON and a merge', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    // 1 µs .. 7 h, log-spread: both bucket paths, below 2^32 µs (clz32) and above (log2).
    const values = Array.from({ length: 20_000 }, () => Math.exp(random() * 24));
    const histogram = new Histogram();
    for (const value of values) histogram.record(value);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      expect(Math.abs(histogram.percentile(p) - exact) / exact).toBeLessThan(0.01);
    }
    expect(histogram.percentile(100)).toBe(sorted[sorted.length - 1]);
    const half = Histogram.fromJSON(JSON.parse(JSON.stringify(histogram.toJSON())));
    expect(half.summary()).toEqual(histogram.summary());
    expect(new Histogram().merge(half).merge(histogram).count).toBe(2 * values.length);
  });

  it('measures open-loop latency from the intended send time, so a stalled server shows', async () => {
    // A "server" that answers at once, except that it stalls for 100 ms once.
    let stalledUntil = 0;
    const result = await runOpenLoop({
      rate: 1000,
      durationMs: 300,
      send: (index, _intended, done) => {
        if (index === 100) stalledUntil = performance.now() + 100;
        const wait = Math.max(0, stalledUntil - performance.now());
        setTimeout(() => done(), wait);
      },
    });
    expect(result.scheduled).toBe(300);
    expect(result.answered).toBe(300);
    expect(result.unanswered).toBe(0);
    // Every request due during the stall waited for it: about 10 % of them took 50 ms or more.
    expect(result.latency.percentile(95)).toBeGreaterThan(40);
    expect(result.latency.max).toBeGreaterThan(90_000);
  });

  it('sends the warm-up at the same rate without counting it', async () => {
    const sent: number[] = [];
    const result = await runOpenLoop({
      rate: 1000,
      durationMs: 100,
      warmupMs: 50,
      send: (index, _intended, done) => {
        sent.push(index);
        // Only the warm-up is slow.
        setTimeout(() => done(), index < 50 ? 30 : 0);
      },
    });
    expect(sent).toHaveLength(150);
    expect(result.scheduled).toBe(100);
    expect(result.answered).toBe(100);
    expect(result.latency.count).toBe(100);
    expect(result.latency.percentile(50)).toBeLessThan(20_000);
  });

  it('keeps the requested number of requests in flight at saturation', async () => {
    let inFlight = 0;
    let most = 0;
    const result = await runClosedLoop({
      concurrency: 8,
      durationMs: 200,
      warmupMs: 50,
      send: (_index, done) => {
        most = Math.max(most, ++inFlight);
        setTimeout(() => (inFlight--, done()), 1);
      },
    });
    expect(most).toBe(8);
    expect(result.perSecond).toBeGreaterThan(0);
  });

  it('runs the progress and persistence scenarios end to end and produces a well-formed result', async () => {
    const result = await runSuite({ scale: 'smoke', only: ['progress', 'persistence'] });
    expect(result.failures).toEqual([]);
    expect(result.machine.cores).toBeGreaterThan(0);
    expect(result.machine.node).toBe(process.version);
    expect(result.scenarios.map((s) => s.name)).toEqual(['progress', 'persistence']);
    for (const scenario of result.scenarios) {
      expect(scenario.checks.length).toBeGreaterThan(0);
      for (const c of scenario.checks) {
        expect(Number.isFinite(c.hub)).toBe(true);
        expect(c.pass === null || typeof c.pass === 'boolean').toBe(true);
        if (c.ratio !== null) expect(c.ratio).toBeCloseTo(c.hub / c.baseline!, 1);
      }
    }
    const progress = result.scenarios[0]!;
    expect(progress.checks.find((c) => c.metric.startsWith('throughput'))!.baseline).toBeGreaterThan(0);
    expect(progress.checks.find((c) => c.metric.startsWith('requests refused'))!.hub).toBe(0);
    // Every server process times the CPU probe: a slowed machine shows on both sides of a round.
    const probe = progress.checks.find((c) => c.metric.startsWith('server CPU probe'))!;
    expect(probe.hub).toBeGreaterThan(0);
    expect(probe.baseline).toBeGreaterThan(0);
    expect(result.machine.cpuProbeIdleUs).toBeGreaterThan(0);
    const markdown = toMarkdown(result);
    expect(markdown).toContain('Targets met: ');
    expect(markdown).toContain('### 1. Progress updates');
    expect(markdown).toContain('## 4. Persistence');
    expect(markdown).toContain('CPU probe');
    // BENCHMARKS.md: only what lies between the markers is replaced.
    const page = (figures: string) => `# Benchmarks\n\nprose\n\n${FIGURES_START}\n${figures}\n${FIGURES_END}\n\nmore prose\n`;
    expect(withFigures(page('old figures'), markdown)).toBe(page(markdown));
    expect(toText(result)).toContain('persistence');
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
  }, 120_000);

  it('runs the assignment scenario: primed, open-loop rounds then saturation, every order delivered and completed on both sides', async () => {
    const result = await runSuite({ scale: 'smoke', only: ['assign'] });
    expect(result.failures).toEqual([]);
    const assign = result.scenarios[0]!;
    expect(assign.checks.find((c) => c.metric.startsWith('orders not completed'))!.hub).toBe(0);
    expect(assign.checks.find((c) => c.metric.startsWith('completed per second at saturation'))!.baseline).toBeGreaterThan(0);
    const details = assign.details as Record<'hub' | 'raw', { rounds: Array<{ created: number; completed: number; delivery: { count: number }; saturation: { completedPerSecond: number } }> }>;
    const { rate, warmupMs } = SCALES.smoke.assignment;
    for (const side of ['hub', 'raw'] as const) {
      // The priming run is not among the rounds, and a round's delivery figures leave out its warm-up.
      const [round] = details[side].rounds;
      expect(details[side].rounds).toHaveLength(1);
      expect(round!.created).toBeGreaterThan(0);
      expect(round!.completed).toBe(round!.created);
      expect(round!.delivery.count).toBe(round!.created - Math.round((rate * warmupMs) / 1000));
      expect(round!.saturation.completedPerSecond).toBeGreaterThan(0);
    }
  }, 120_000);

  it('runs the big-workflow scenario: phases with and without readers, whole and summary-view subscriptions and reports all read', async () => {
    const result = await runSuite({ scale: 'smoke', only: ['big-workflow'] });
    expect(result.failures).toEqual([]);
    const big = result.scenarios[0]!;
    const find = (start: string) => big.checks.find((c) => c.metric.startsWith(start))!;
    expect(find('requests refused or unanswered').hub).toBe(0);
    expect(find('reports read').hub).toBeGreaterThan(0);
    // Both kinds of subscription were made and measured, the summary view much the smaller.
    const summary = find('summary-view subscription');
    expect(summary.hub).toBeGreaterThan(0);
    expect(summary.baseline).toBeGreaterThan(summary.hub);
    expect(find('hub event-loop delay max').baseline).toBeGreaterThan(0);
    expect(toMarkdown(result)).toContain('### 8. A big workflow and its readers');
  }, 120_000);

  it('fits the heap trend of the soak by least squares: a steady rise is its slope per minute, a flat heap none', () => {
    // 2 MB a minute from 100 MB, with noise that leans neither way.
    const noise = [0.5, -0.5, 0, -0.5, 0.5];
    const rising = noise.map((n, minute): [number, number] => [minute, 100 + 2 * minute + n]);
    expect(linearFit(rising).slope).toBeCloseTo(2, 6);
    expect(linearFit(rising).mean).toBeCloseTo(104, 6);
    expect(linearFit([[0, 50], [1, 50], [2, 50]]).slope).toBe(0);
  });

  it('runs the soak scenario: every lifecycle and workflow completed, the heap sampled throughout, restarts timed and summaries read', async () => {
    const result = await runSuite({ scale: 'smoke', only: ['soak'] });
    expect(result.failures).toEqual([]);
    const soak = result.scenarios[0]!;
    const find = (start: string) => soak.checks.find((c) => c.metric.startsWith(start))!;
    expect(find('orders or workflows not completed').hub).toBe(0);
    expect(find('summary reads refused or unanswered').hub).toBe(0);
    expect(Number.isFinite(find('heap after GC, slope').hub)).toBe(true);
    expect(find('restart with').baseline).toBeGreaterThan(0);
    const { rate, durationMs, sampleEveryMs, ordersPerWorkflow } = SCALES.smoke.soak;
    const details = soak.details as {
      samples: Array<{ heapMB: number }>;
      run: { created: number; completed: number; workflowsCreated: number; workflowsCompleted: number };
      reads: { archived: { count: number }; inMemory: { count: number } };
    };
    // A sample before the load, then one every sampleEveryMs.
    expect(details.samples).toHaveLength(durationMs / sampleEveryMs + 1);
    expect(details.samples.every((s) => s.heapMB > 0)).toBe(true);
    expect(details.run.created).toBe((rate * durationMs) / 1000);
    expect(details.run.completed).toBe(details.run.created);
    // The workflow made ready for the orders after the last is completed too, empty.
    expect(details.run.workflowsCreated).toBe(Math.ceil(details.run.created / ordersPerWorkflow) + 1);
    expect(details.run.workflowsCompleted).toBe(details.run.workflowsCreated);
    expect(details.reads.archived.count).toBeGreaterThan(0);
    expect(details.reads.inMemory.count).toBeGreaterThan(0);
    expect(toMarkdown(result)).toContain('### 7. Soak');
  }, 120_000);
});

describe('bench subscribers', () => {
  it('find every progress message of their run in a frame, and only those', () => {
    const op = (id: string, value: string) => `{"op":"replace","path":"/workOrders/${id}/message","value":"${value}"}`;
    const frame = `2/monitor,["patch",{"doc":"wf_1","from":1,"to":4,"ops":[${op('wo_a', 'r7:1203')},${op('wo_b', 'r70:5')},${op('wo_c', 'r7:0')},${op('wo_d', 'x')}]}]`;
    const found: number[] = [];
    scanProgress(frame, 'r7', (index) => found.push(index));
    expect(found).toEqual([1203, 0]);
  });

  it('read a real hub patch frame as text and find each progress message in it', async () => {
    const hub = await startHub({ patchIntervalMs: 20 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'text frames' });
    await wf.start();
    const [socket] = await openSockets(hub.url, '/monitor', TOKENS.monitor, 1, { parser: patchTextParser });
    onTestFinished(() => void socket!.disconnect());
    const frames: unknown[] = [];
    const carrying = new Promise<string>((resolve) =>
      socket!.on('patch', (frame: unknown) => {
        frames.push(frame);
        if (typeof frame === 'string' && frame.includes('"r7:')) resolve(frame);
      }),
    );
    expect(await ask(socket!, 'subscribe', { doc: wf.id })).toMatchObject({ ok: true });
    const worker = await agent(hub, { agentId: 'w', agentType: 'w', progressIntervalMs: 1 });
    await worker.onTask('*', async (_task, ctx) => {
      await ctx.progress(10, 'other:4');
      await ctx.progress(20, 'r7:3');
      return { result: null };
    });
    const order = await wf.createWorkOrder({ taskType: 't', description: 'one' });
    const frame = await carrying;
    expect(frame).toContain(`"path":"/workOrders/${order.id}/message","value":"r7:3"`);
    const found: number[] = [];
    scanProgress(frame, 'r7', (index) => found.push(index));
    expect(found).toEqual([3]);
    expect(frames.every((frame) => typeof frame === 'string')).toBe(true);
  });
});
