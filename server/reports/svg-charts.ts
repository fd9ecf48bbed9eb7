import type { Kpi } from '../../shared/schemas/kpis.ts';
import type { StageProgress } from '../../shared/schemas/workflow.ts';
import { decimal, duration, escapeHtml, isoTime, percent } from './formatting.ts';
import type { AttemptBar, Bounded } from './timeline.ts';

/**
 * Inline SVG charts for the HTML report. They are drawn here rather than by a chart library so
 * the page needs no script to show them and opens offline. Colours come from the page's CSS
 * classes. Coordinates are printed with one decimal so the bytes are the same everywhere.
 */

const WIDTH = 780;
const LABEL = 180;
const BAR = 400;
const ROW = 26;

const n = (value: number) => value.toFixed(1);

/** Shortens a label to `max` characters (code points, so no surrogate pair is split). */
function shorten(text: string, max = 26): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function svg(kind: string, label: string, rows: number, body: string[]): string {
  const height = Math.max(1, rows) * ROW + 8;
  return [
    `<svg class="chart chart-${kind}" role="img" aria-label="${escapeHtml(label)}" viewBox="0 0 ${WIDTH} ${height}" width="100%" preserveAspectRatio="xMinYMin meet">`,
    `<title>${escapeHtml(label)}</title>`,
    ...body,
    '</svg>',
  ].join('\n');
}

const empty = (kind: string, label: string, message: string) => svg(kind, label, 1, [`<text class="empty" x="0" y="18">${escapeHtml(message)}</text>`]);

function labelText(y: number, text: string): string {
  return `<text class="label" x="0" y="${n(y + 17)}"><title>${escapeHtml(text)}</title>${escapeHtml(shorten(text))}</text>`;
}

/** Horizontal progress bars: the overall progress, then one bar per stage. */
export function progressChart(overall: number, stages: StageProgress[]): string {
  const rows = [{ name: 'Overall', progress: overall, done: overall >= 100, overall: true }, ...stages.map((s) => ({ name: s.name, progress: s.progress, done: s.completedAt !== null, overall: false }))];
  const body = rows.map((row, index) => {
    const y = index * ROW + 4;
    const fill = (BAR * Math.min(100, Math.max(0, row.progress))) / 100;
    const kind = row.overall ? 'overall' : row.done ? 'done' : 'active';
    return [
      `<g class="row">`,
      labelText(y, row.name),
      `<rect class="track" x="${LABEL}" y="${n(y + 4)}" width="${BAR}" height="16" rx="3"/>`,
      `<rect class="fill fill-${kind}" x="${LABEL}" y="${n(y + 4)}" width="${n(fill)}" height="16" rx="3"/>`,
      `<text class="value" x="${LABEL + BAR + 10}" y="${n(y + 17)}">${percent(row.progress)}</text>`,
      `</g>`,
    ].join('');
  });
  return svg('progress', 'Overall and per-stage progress', rows.length, body);
}

/**
 * One row per KPI: a bar for the current value and a tick at the target, on a scale of the
 * larger of the two. Negative values are drawn as zero (the numbers are printed beside).
 */
export function kpiChart(kpis: Kpi[]): string {
  if (kpis.length === 0) return empty('kpis', 'KPIs against targets', 'No KPIs');
  const body = kpis.map((kpi, index) => {
    const y = index * ROW + 4;
    const current = Math.max(0, kpi.current ?? 0);
    const target = Math.max(0, kpi.target);
    const largest = Math.max(current, target);
    // A share of the largest before any product: BAR or 1.1 times a value near Number.MAX_VALUE is Infinity.
    const share = (value: number) => (largest === 0 ? 0 : value / largest / 1.1);
    const status = kpi.current === null ? 'none' : kpi.met ? 'met' : 'unmet';
    const targetX = LABEL + BAR * share(target);
    const unit = kpi.unit ? ` ${kpi.unit}` : '';
    return [
      `<g class="row kpi-${status}">`,
      labelText(y, kpi.name),
      `<rect class="track" x="${LABEL}" y="${n(y + 4)}" width="${BAR}" height="16" rx="3"/>`,
      `<rect class="fill fill-${status}" x="${LABEL}" y="${n(y + 4)}" width="${n(BAR * share(current))}" height="16" rx="3"/>`,
      `<line class="target" x1="${n(targetX)}" x2="${n(targetX)}" y1="${n(y + 1)}" y2="${n(y + 23)}"/>`,
      `<text class="value" x="${LABEL + BAR + 10}" y="${n(y + 17)}">${escapeHtml(`${decimal(kpi.current)} / ${decimal(kpi.target)}${shorten(unit, 12)}`)}</text>`,
      `</g>`,
    ].join('');
  });
  return svg('kpis', 'KPIs against targets (bar: current value, tick: target)', kpis.length, body);
}

/** One bar per work order attempt on a shared time axis, coloured by how it ended. */
export function timelineChart(attempts: Bounded<AttemptBar>): string {
  if (attempts.items.length === 0) return empty('timeline', 'Work order attempts over time', 'No work order attempts');
  const start = Math.min(...attempts.items.map((a) => a.startedAt));
  const end = Math.max(start + 1, ...attempts.items.map((a) => a.endedAt));
  const x = (at: number) => LABEL + (BAR * (at - start)) / (end - start);
  const body = attempts.items.map((attempt, index) => {
    const y = index * ROW + 4;
    const width = Math.max(2, x(attempt.endedAt) - x(attempt.startedAt));
    const tip = `${attempt.workOrderId} attempt ${attempt.number} on ${attempt.agentId}: ${attempt.outcome}, ${isoTime(attempt.startedAt)} to ${isoTime(attempt.endedAt)} (${duration(Math.max(0, attempt.endedAt - attempt.startedAt))})`;
    return [
      `<g class="row">`,
      labelText(y, `${attempt.workOrderId} #${attempt.number}`),
      `<rect class="bar outcome-${escapeHtml(attempt.outcome)}" x="${n(x(attempt.startedAt))}" y="${n(y + 4)}" width="${n(width)}" height="16" rx="2"><title>${escapeHtml(tip)}</title></rect>`,
      `</g>`,
    ].join('');
  });
  const axisY = attempts.items.length * ROW + 4;
  body.push(
    `<text class="axis" x="${LABEL}" y="${axisY + 14}">${isoTime(start)}</text>`,
    `<text class="axis" x="${LABEL + BAR}" y="${axisY + 14}" text-anchor="end">${isoTime(end)}</text>`,
  );
  const shown = attempts.items.length < attempts.total ? `, the latest ${attempts.items.length} of ${attempts.total}` : '';
  return svg('timeline', `Work order attempts over time${shown}`, attempts.items.length + 1, body);
}
