import type { Kpi } from '../../../shared/schemas/kpis.ts';
import { esc } from './escape.ts';
import { INTERVAL_MS, INTERVALS_SHOWN_AT_LEAST, type Interval, type Load, type Throughput } from './timeline.ts';

// The dashboard's charts: SVG drawn by hand from the live data, as strings (no library, no CDN).
// Each chart states what it drew in data- attributes, which the browser tests compare with the state.

/** A number as SVG wants it: two decimals at most. */
const n = (value: number) => String(Math.round(value * 100) / 100);

/** Maps [low, high] to [from, to] (a flat range to the middle). */
function scale(low: number, high: number, from: number, to: number): (value: number) => number {
  if (high === low) return () => (from + to) / 2;
  return (value) => from + ((value - low) / (high - low)) * (to - from);
}

// Plain digits always: toPrecision and String write exponents (999.7 → "1.00e+3", 1.2e-7 → "1.2e-7").
// A fixed locale keeps "." as the decimal point. (signDisplay would throw in browsers before 2022.)
const SIGNIFICANT = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3, useGrouping: false });
const WHOLE = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0, useGrouping: false });

/** A value as a KPI shows it: three significant digits, or every digit of its whole part, then its unit. */
export function formatValue(value: number | null, unit = ''): string {
  if (value === null) return '–';
  // `|| 0`: -0 (and a whole part rounded to it) reads 0.
  const text = Math.abs(value) >= 1000 ? WHOLE.format(Math.round(value) || 0) : SIGNIFICANT.format(value || 0);
  return unit ? `${text} ${unit}` : text;
}

/**
 * A KPI's recorded history as a sparkline against its target: one point per sample in `history`
 * (by time), a dashed line at the target, the newest value dotted in the colour of `met`.
 */
export function kpiSparkline(kpi: Kpi, width = 240, height = 48): string {
  const pad = 4;
  const samples = kpi.history;
  const values = samples.map((s) => s.value);
  const low = Math.min(kpi.target, ...values);
  const high = Math.max(kpi.target, ...values);
  // A share of the range from halves, then a tenth of it as margin each side: the range, or the
  // margin, of values near Number.MAX_VALUE is Infinity.
  const share = (value: number) => (high === low ? 0.5 : (value / 2 - low / 2) / (high / 2 - low / 2));
  const y = (value: number) => height - pad - ((share(value) + 0.1) / 1.2) * (height - 2 * pad);
  const first = samples[0]?.at ?? 0;
  const last = samples[samples.length - 1]?.at ?? 0;
  // Samples recorded in the same millisecond are spread by their order instead.
  const x = last > first ? scale(first, last, pad, width - pad) : scale(0, samples.length - 1, pad, width - pad);
  const points = samples.map((s, i) => `${n(x(last > first ? s.at : i))},${n(y(s.value))}`).join(' ');
  const newest = samples[samples.length - 1];
  const summary = `${kpi.name}: ${samples.length} samples, now ${formatValue(kpi.current, kpi.unit)}, target ${formatValue(kpi.target, kpi.unit)}`;
  return `<svg class="spark kpi-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(summary)}" data-kpi="${esc(kpi.id)}" data-target-y="${n(y(kpi.target))}">
    <title>${esc(summary)}</title>
    <line class="target" x1="0" x2="${width}" y1="${n(y(kpi.target))}" y2="${n(y(kpi.target))}" />
    <polyline class="history" points="${points}" data-points="${samples.length}" />
    ${newest ? `<circle class="newest ${kpi.met ? 'met' : 'unmet'}" r="2.5" cx="${n(x(last > first ? newest.at : samples.length - 1))}" cy="${n(y(newest.value))}" />` : ''}
  </svg>`;
}

/** The slots a timeline chart spans: at least a minute's worth, the intervals kept at the right. */
function slots<T>(intervals: readonly Interval<T>[]): { count: number; offset: number } {
  const count = Math.max(INTERVALS_SHOWN_AT_LEAST, intervals.length);
  return { count, offset: count - intervals.length };
}

/** An agent's load per interval as a sparkline: the peak of each interval, under a line at its capacity. */
export function loadSparkline(agentId: string, intervals: readonly Interval<Load>[], capacity: number, width = 96, height = 22): string {
  const pad = 2;
  const { count, offset } = slots(intervals);
  const top = Math.max(capacity, ...intervals.map((i) => i.value.peak), 1);
  const y = scale(0, top, height - pad, pad);
  const x = scale(0, count - 1, pad, width - pad);
  const peaks = intervals.map((i) => i.value.peak);
  const points = peaks.map((peak, i) => `${n(x(offset + i))},${n(y(peak))}`);
  const area = points.length ? `<polygon class="area" points="${n(x(offset))},${n(y(0))} ${points.join(' ')} ${n(x(offset + points.length - 1))},${n(y(0))}" />` : '';
  return `<svg class="spark load-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="load of ${esc(agentId)} per ${INTERVAL_MS / 1000} s"
    data-agent-load="${esc(agentId)}" data-intervals="${intervals.length}" data-peak="${peaks[peaks.length - 1] ?? ''}">
    <line class="capacity" x1="0" x2="${width}" y1="${n(y(capacity))}" y2="${n(y(capacity))}" />
    ${area}<polyline class="load" points="${points.join(' ')}" data-points="${points.length}" />
  </svg>`;
}

/**
 * A workflow's orders over the last minutes: per interval, a bar of the orders that completed
 * (green) with those that failed on top (red), on the left scale; the queue depth at the end of
 * each interval as a line, on the right scale.
 */
export function throughputChart(intervals: readonly Interval<Throughput>[], width = 560, height = 150): string {
  const left = 30;
  const right = 30;
  const top = 8;
  const bottom = 18;
  const { count, offset } = slots(intervals);
  const slot = (width - left - right) / count;
  const ended = Math.max(1, ...intervals.map((i) => i.value.completed + i.value.failed));
  const deepest = Math.max(1, ...intervals.map((i) => i.value.queued));
  const bars = scale(0, ended, height - bottom, top);
  const depth = scale(0, deepest, height - bottom, top);
  const base = height - bottom;
  const rects: string[] = [];
  const line: string[] = [];
  intervals.forEach(({ start, value }, i) => {
    const x = left + (offset + i) * slot;
    const label = `${new Date(start).toLocaleTimeString()}: ${value.completed} completed, ${value.failed} failed, ${value.queued} queued`;
    if (value.completed > 0) rects.push(`<rect class="completed" x="${n(x + 1)}" width="${n(slot - 2)}" y="${n(bars(value.completed))}" height="${n(base - bars(value.completed))}" data-count="${value.completed}"><title>${esc(label)}</title></rect>`);
    if (value.failed > 0) {
      const y0 = bars(value.completed);
      const y1 = bars(value.completed + value.failed);
      rects.push(`<rect class="failed" x="${n(x + 1)}" width="${n(slot - 2)}" y="${n(y1)}" height="${n(y0 - y1)}" data-count="${value.failed}"><title>${esc(label)}</title></rect>`);
    }
    line.push(`${n(x + slot / 2)},${n(depth(value.queued))}`);
  });
  const sum = (key: 'completed' | 'failed') => intervals.reduce((total, i) => total + i.value[key], 0);
  const newest = intervals[intervals.length - 1]?.value;
  const seconds = (count * INTERVAL_MS) / 1000;
  const span = seconds < 120 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
  return `<svg class="throughput-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="orders completed and failed per ${INTERVAL_MS / 1000} s, and queue depth"
    data-intervals="${intervals.length}" data-completed="${sum('completed')}" data-failed="${sum('failed')}" data-queued="${newest?.queued ?? 0}">
    <line class="axis" x1="${left}" x2="${width - right}" y1="${base}" y2="${base}" />
    <text class="tick" x="${left - 4}" y="${top + 8}" text-anchor="end">${ended}</text>
    <text class="tick" x="${left - 4}" y="${base}" text-anchor="end">0</text>
    <text class="tick queue" x="${width - right + 4}" y="${top + 8}">${deepest}</text>
    <text class="tick queue" x="${width - right + 4}" y="${base}">0</text>
    <text class="tick" x="${left}" y="${height - 4}">${span} ago</text>
    <text class="tick" x="${width - right}" y="${height - 4}" text-anchor="end">now</text>
    ${rects.join('')}
    <polyline class="queue" points="${line.join(' ')}" data-points="${line.length}" />
  </svg>`;
}
