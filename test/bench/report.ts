import { cpus, loadavg, release, totalmem } from 'node:os';
import { probeNow } from './cpu-probe.ts';

/** One line of a scenario's table: the hub's figure beside its raw baseline, and the target. */
export interface Check {
  metric: string;
  unit: string;
  hub: number;
  baseline: number | null;
  /** hub / baseline. */
  ratio: number | null;
  /** The target in words, e.g. "≥ 50 % of raw"; empty when the line is for information. */
  target: string;
  /** null: no target on this line. */
  pass: boolean | null;
}

/** A target on a check: an absolute bound on the hub's figure or a bound on the ratio. */
export interface Target {
  max?: number;
  ratioMax?: number;
  ratioMin?: number;
  text: string;
}

/** Builds a check, computing the ratio and whether the target holds. */
export function check(metric: string, unit: string, hub: number, baseline: number | null = null, target?: Target): Check {
  if (baseline !== null && !Number.isFinite(baseline)) baseline = null;
  const ratio = baseline !== null && baseline > 0 ? round(hub / baseline, 3) : null;
  let pass: boolean | null = null;
  const needsRatio = target && (target.ratioMax !== undefined || target.ratioMin !== undefined);
  if (target && !(needsRatio && ratio === null && baseline === null)) {
    pass = true;
    if (target.max !== undefined) pass &&= hub <= target.max;
    if (target.ratioMax !== undefined) pass &&= ratio !== null && ratio <= target.ratioMax;
    if (target.ratioMin !== undefined) pass &&= ratio !== null && ratio >= target.ratioMin;
  }
  return { metric, unit, hub: round(hub, 3), baseline: baseline === null ? null : round(baseline, 3), ratio, target: target?.text ?? '', pass };
}

export interface ScenarioResult {
  name: string;
  title: string;
  /** What the first column measures (default: the hub). */
  subject?: string;
  /** What the second column measures (default: raw socket.io, or "Compared with" when `subject` is set). */
  against?: string;
  /** Why the scenario did not run (e.g. PostgreSQL is not installed); it then has no checks. */
  skipped?: string;
  checks: Check[];
  /** Every figure measured, for the JSON file. */
  details: Record<string, unknown>;
  notes: string[];
  durationMs: number;
}

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  os: string;
  date: string;
  loadAverageAtStart: number[];
  /** The CPU probe's fixed work on this idle machine before the run (µs; cpu-probe.ts). Absent in older results. */
  cpuProbeIdleUs?: number;
  note: string;
}

export interface BenchResult {
  machine: Machine;
  scale: string;
  command: string;
  durationMs: number;
  scenarios: ScenarioResult[];
  /** Scenarios that threw, with the error. */
  failures: Array<{ scenario: string; error: string }>;
}

export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function describeMachine(note: string): Machine {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    ramGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    os: `${process.platform} ${release()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg().map((n) => round(n, 2)),
    cpuProbeIdleUs: round(probeNow(), 1),
    note,
  };
}

function format(value: number | null, unit = ''): string {
  if (value === null) return '—';
  const text = Math.abs(value) >= 1000 ? Math.round(value).toLocaleString('en-US') : String(round(value, 2));
  return unit ? `${text} ${unit}` : text;
}

/** Ratios with three significant digits, so that 0.498 does not read as a passing 0.5. */
function ratio(value: number | null): string {
  return value === null ? '—' : value >= 100 ? String(Math.round(value)) : value.toPrecision(3);
}

function verdict(pass: boolean | null): string {
  return pass === null ? '' : pass ? 'pass' : '**FAIL**';
}

/** BENCHMARKS.md holds the figures of the latest full run between these two lines; `npm run bench` rewrites only what lies between. */
export const FIGURES_START = '<!-- figures: written by `npm run bench` from test/bench/results/latest.json; edit outside these markers -->';
export const FIGURES_END = '<!-- end of figures -->';

/** The figures of a run in Markdown: the run and machine, how many targets held, then a table per scenario. */
export function toMarkdown(result: BenchResult): string {
  const m = result.machine;
  const lines = [
    `- Run of ${m.date.slice(0, 16).replace('T', ' ')} UTC: \`${result.command}\`, scale \`${result.scale}\`, ${Math.round(result.durationMs / 1000)} s.`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, ${m.os}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}` +
      (m.cpuProbeIdleUs ? `; CPU probe ${m.cpuProbeIdleUs} µs on the idle machine.` : '.'),
    ...(m.note ? [`- Note: ${m.note}`] : []),
  ];
  const targets = result.scenarios.flatMap((scenario) => scenario.checks.filter((c) => c.pass !== null).map((c) => ({ scenario, c })));
  const missed = targets.filter(({ c }) => !c.pass);
  lines.push('', `Targets met: ${targets.length - missed.length} of ${targets.length}.`);
  for (const { scenario, c } of missed) lines.push(`- **FAIL**: ${scenario.title}, ${c.metric}: ${format(c.hub, c.unit)} (target ${c.target})`);
  for (const failure of result.failures) lines.push(`- **ERROR**: ${failure.scenario} did not complete: ${failure.error.split('\n')[0]}`);
  for (const scenario of result.scenarios) {
    lines.push('', `### ${scenario.title}`, '');
    if (scenario.skipped) {
      lines.push(`Skipped: ${scenario.skipped}`);
      continue;
    }
    if (scenario.notes.length) lines.push(...scenario.notes.map((n) => `- ${n}`), '');
    lines.push(`| Metric | ${scenario.subject ?? 'Hub'} | ${scenario.against ?? (scenario.subject ? 'Compared with' : 'Raw socket.io')} | Ratio | Target |`, '|---|---:|---:|---:|---|');
    for (const c of scenario.checks) {
      lines.push(`| ${c.metric} | ${format(c.hub, c.unit)} | ${format(c.baseline, c.unit)} | ${ratio(c.ratio)} | ${c.target ? `${c.target}: ${verdict(c.pass)}` : ''} |`);
    }
  }
  return lines.join('\n');
}

/** `document` (BENCHMARKS.md) with `figures` between its markers, the rest untouched. */
export function withFigures(document: string, figures: string): string {
  const start = document.indexOf(FIGURES_START);
  const end = document.indexOf(FIGURES_END);
  if (start === -1 || end < start) throw new Error('BENCHMARKS.md has lost its figure markers (FIGURES_START, FIGURES_END in test/bench/report.ts)');
  return `${document.slice(0, start + FIGURES_START.length)}\n${figures}\n${document.slice(end)}`;
}

/** A plain-text table for the terminal. */
export function toText(result: BenchResult): string {
  const rows = [['scenario', 'metric', 'hub', 'raw', 'ratio', 'target', 'result']];
  for (const scenario of result.scenarios) {
    if (scenario.skipped) rows.push([scenario.name, 'skipped', '', '', '', '', scenario.skipped.slice(0, 80)]);
    for (const c of scenario.checks) rows.push([scenario.name, c.metric, format(c.hub, c.unit), format(c.baseline, c.unit), ratio(c.ratio), c.target, c.pass === null ? '' : c.pass ? 'pass' : 'FAIL']);
  }
  for (const failure of result.failures) rows.push([failure.scenario, 'ERROR', '', '', '', '', failure.error.split('\n')[0]!.slice(0, 80)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
