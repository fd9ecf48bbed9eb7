import { describe, expect, it } from 'vitest';
import type { Agent } from '../shared/schemas/agent.ts';
import type { SummaryView } from '../shared/schemas/views.ts';
import { formatValue } from '../server/http/dashboard/charts.ts';
import { INTERVAL_MS, INTERVALS_KEPT, LoadTimelines, ThroughputTimeline, Timeline } from '../server/http/dashboard/timeline.ts';

const T0 = 1_767_261_600_000;
const counts = (c: Partial<SummaryView['workOrderCounts']>): SummaryView['workOrderCounts'] => ({
  pending: 0, blocked: 0, queued: 0, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 0, ...c,
});

describe('the dashboard’s timelines', () => {
  it('start an interval for every period, those without news carrying the level, and keep the last five minutes', () => {
    const timeline = new Timeline<{ level: number }>((previous) => ({ level: previous?.level ?? 0 }));
    timeline.at(T0).level = 3;
    expect(timeline.list(T0 + 3 * INTERVAL_MS).map((i) => [i.start - T0, i.value.level])).toEqual([
      [0, 3],
      [INTERVAL_MS, 3],
      [2 * INTERVAL_MS, 3],
      [3 * INTERVAL_MS, 3],
    ]);
    expect(timeline.list(T0 + 1000 * INTERVAL_MS)).toHaveLength(INTERVALS_KEPT);
    expect(timeline.list(T0 + 1000 * INTERVAL_MS).at(-1)!.start).toBe(T0 + 1000 * INTERVAL_MS);
  });

  it('count the orders that completed and failed in each interval from a workflow’s counts, what ended before the page opened aside', () => {
    const throughput = new ThroughputTimeline();
    throughput.observe(counts({ completed: 40, failed: 2, queued: 9 }), T0);
    throughput.observe(counts({ completed: 43, failed: 2, queued: 6 }), T0 + 1000);
    throughput.observe(counts({ completed: 45, failed: 3, queued: 1 }), T0 + INTERVAL_MS);
    expect(throughput.list(T0 + 2 * INTERVAL_MS).map((i) => i.value)).toEqual([
      { completed: 3, failed: 0, queued: 6, running: 0 },
      { completed: 2, failed: 1, queued: 1, running: 0 },
      { completed: 0, failed: 0, queued: 1, running: 0 },
    ]);
  });

  it('keep each agent’s peak load per interval and forget agents that left the pool', () => {
    const loads = new LoadTimelines();
    const agent = (id: string, load: number) => ({ id, load }) as Agent;
    loads.observe([agent('a', 2), agent('b', 0)], T0);
    loads.observe([agent('a', 0), agent('b', 0)], T0 + 10);
    loads.observe([agent('a', 1)], T0 + INTERVAL_MS);
    expect(loads.list('a', T0 + INTERVAL_MS).map((i) => i.value)).toEqual([
      { peak: 2, last: 0 },
      { peak: 1, last: 1 },
    ]);
    expect(loads.list('b', T0 + INTERVAL_MS)).toEqual([]);
  });
});

describe('the dashboard’s KPI values', () => {
  it('keep three significant digits, the zeros of whole numbers, and their unit', () => {
    expect([720.3, 0.8496, 1.0004, 12.5, 6100.2, 3].map((v) => formatValue(v))).toEqual(['720', '0.85', '1', '12.5', '6100', '3']);
    expect(formatValue(771.2, 'ms')).toBe('771 ms');
    expect(formatValue(null, 'ms')).toBe('–');
  });
});
