import { describe, expect, it } from 'vitest';
import type { Kpi } from '../shared/schemas/kpis.ts';
import { kpiSparkline } from '../server/http/dashboard/charts.ts';
import { bar, pausedPill, pill } from '../server/http/dashboard/view.ts';

describe("the dashboard's state pills", () => {
  it('write every underscore of a state as a space, and escape the state and its title', () => {
    expect(pill('no_capable_agent', 'needs <gpu>')).toBe('<span class="pill s-no_capable_agent" title="needs &#60;gpu&#62;">no capable agent</span>');
    expect(pill('in_progress')).toBe('<span class="pill s-in_progress">in progress</span>');
  });

  it('show a paused workflow with a `paused` pill saying who paused it and why, escaped, and nothing for one not paused', () => {
    const shown = pausedPill({ at: 0, by: 'ops', reason: 'API <budget>' });
    expect(shown).toMatch(/^ <span class="pill s-paused" title="paused by ops at [^"]+: API &#60;budget&#62;">paused<\/span>$/);
    expect(pausedPill({ at: 0, by: 'ops', reason: null })).not.toContain(': ');
    expect([pausedPill(null), pausedPill(undefined)]).toEqual(['', '']);
  });
});

describe("the dashboard's progress bars", () => {
  it('never round a percentage below 100 up to 100%', () => {
    expect([bar(99.6).endsWith('>99%'), bar(100).endsWith('>100%'), bar(40.4).endsWith('>40%')]).toEqual([true, true, true]);
  });
});

describe("the dashboard's KPI sparkline", () => {
  /** A KPI aiming at `target` (higher is better) that recorded `values`, one a millisecond. */
  const kpi = (target: number, values: number[]): Kpi => {
    const history = values.map((value, i) => ({ value, at: 1000 + i }));
    return { id: 'k', name: 'k', description: '', unit: '', direction: 'higher', target, current: values.at(-1) ?? null, met: false, samples: values.length, history, createdAt: 0, updatedAt: 0 };
  };
  /** The y of the target line and the [x, y] points of the history. */
  const drawn = (svg: string) => ({
    targetY: Number(svg.match(/data-target-y="([^"]*)"/)![1]),
    points: svg.match(/class="history" points="([^"]*)"/)![1]!.split(' ').map((pair) => pair.split(',').map(Number)),
  });

  it('draws values near the largest a double holds with numbers, not NaN, and apart from a target they differ from', () => {
    const opposite = kpiSparkline(kpi(Number.MAX_VALUE, [-Number.MAX_VALUE]));
    expect(opposite).not.toContain('NaN');
    const half = drawn(kpiSparkline(kpi(Number.MAX_VALUE, [Number.MAX_VALUE / 2])));
    // Below the target line (y grows downwards), as for any value under its target.
    expect(half.points[0]![1]).toBeGreaterThan(half.targetY);
    const small = drawn(kpiSparkline(kpi(10, [5])));
    expect(small.points[0]![1]).toBeGreaterThan(small.targetY);
  });
});
