import { marked, type Token, type Tokens } from 'marked';
import { describe, expect, it, onTestFinished } from 'vitest';
import { AddKpiInput } from '../shared/schemas/kpis.ts';
import { summarize } from '../server/domain/workflows/summary.ts';
import { HASH_PLACEHOLDER, renderReport, renderReports, verifyReportHash, type Report, type ReportInput } from '../server/reports/report.ts';
import { SEARCH_SCRIPT } from '../server/reports/page-assets.ts';
import { durationStats } from '../server/reports/statistics.ts';
import { byteSize, decimal, duration, percent } from '../server/reports/formatting.ts';
import { ReportRenderer } from '../server/reports/report-renderer.ts';
import { HOSTILE, inputOf, largeWorkflow, realisticWorkflow, reverseKeys, withData } from './helpers/report-fixture.ts';
import { control, startHub } from './helpers/hub.ts';

/** The text a reader sees for inline Markdown tokens (escapes resolved). */
function plain(tokens: Token[] | undefined): string {
  return (tokens ?? [])
    .map((token) => ('tokens' in token && token.tokens ? plain(token.tokens) : 'text' in token ? String(token.text) : ''))
    .join('');
}

/** The Markdown's level-2 sections by heading, in order, with their tokens. */
function sections(markdown: string): Map<string, Token[]> {
  const result = new Map<string, Token[]>();
  let current: Token[] | undefined;
  for (const token of marked.lexer(markdown)) {
    if (token.type === 'heading' && (token as Tokens.Heading).depth === 2) result.set(plain((token as Tokens.Heading).tokens), (current = []));
    else current?.push(token);
  }
  return result;
}

/** The rows of the first table in a section, each cell as the text a reader sees. */
function tableRows(tokens: Token[] | undefined): string[][] {
  const table = tokens?.find((t): t is Tokens.Table => t.type === 'table');
  if (!table) throw new Error('no table in section');
  return table.rows.map((row) => row.map((cell) => plain(cell.tokens)));
}

const render = (input: ReportInput) => {
  const [json, markdown, html] = renderReports(input) as [Report, Report, Report];
  return { json, markdown, html };
};

const SECTION_TITLES = ['Summary', 'Objectives', 'KPIs against targets', 'Stage progress', 'Agents and their performance', 'Work orders', 'Data inventory', 'Execution timeline'];

describe('report renderers', () => {
  it('the JSON report holds the complete workflow document, the summary and statistics that match it', () => {
    const input = realisticWorkflow().input();
    const report = renderReport(input, 'json');
    const parsed = JSON.parse(report.body);
    expect(parsed.workflow).toEqual(input.workflow);
    expect(parsed.report).toMatchObject({ workflowId: 'customer-insights', version: input.version, hash: report.hash, hashAlgorithm: 'sha256' });
    const expected = summarize(input.workflow, input.version, input.workflow.updatedAt);
    expect(parsed.summary).toMatchObject({ progress: expected.progress, durationMs: expected.durationMs, steps: expected.steps, kpis: { total: 2, met: 1 } });
    const orders = parsed.statistics.workOrders;
    expect(orders.byState).toEqual(input.workflow.workOrderCounts);
    expect(orders).toMatchObject({ total: 5, attempts: 5, retries: 1, retriedOrders: 1, attemptOutcomes: { completed: 2, failed: 2 } });
    // load-data took 250 ms; analyze 1500 ms (failed attempt, backoff, second attempt).
    expect(orders.completedDuration).toEqual({ count: 2, meanMs: 875, p95Ms: 1500 });
    expect(parsed.statistics.agents.map((a: { agentId: string; agentType: string; completed: number }) => [a.agentId, a.agentType, a.completed])).toEqual([
      ['csv-agent', 'loader', 1],
      ['stats-agent', 'analyst', 1],
    ]);
    expect(parsed.statistics.dataInventory).toEqual({ count: 0, byStatus: {}, totalBytes: 0 });
    expect(report).toMatchObject({ contentType: 'application/json; charset=utf-8', fileName: `report-v${input.version}.json` });
  });

  it('the Markdown report has its sections in order, with tables whose cells match the objectives, KPIs and work orders', () => {
    const input = realisticWorkflow().input();
    const { body } = renderReport(input, 'markdown');
    const tokens = marked.lexer(body);
    const headings = tokens.filter((t): t is Tokens.Heading => t.type === 'heading');
    expect(headings.map((h) => [h.depth, plain(h.tokens)])).toEqual([[1, 'Workflow report: customer-insights'], ...SECTION_TITLES.map((title) => [2, title])]);
    const parts = sections(body);
    const byState = (state: string) => Object.values(input.workflow.workOrders).filter((o) => o.state === state).length;
    expect(body).toContain(`**Work orders:** ${Object.keys(input.workflow.workOrders).length} (${byState('completed')} completed, ${byState('failed')} failed, ${byState('cancelled')} cancelled; `);
    expect(tableRows(parts.get('Objectives')).map((row) => [row[0], row[2], row[3], row[4], row[5]])).toEqual([
      ['Data analysis', '100% completion', 'high', 'in_progress', '50.0%'],
      [`Sneaky ${HOSTILE}`, '', 'normal', 'pending', '0.0%'],
    ]);
    expect(tableRows(parts.get('KPIs against targets'))).toEqual([
      ['Error rate', '2.25', '0.5', '%', 'lower', '✗', '1'],
      ['Processing speed', '1200', '1000', 'records/minute', 'higher', '✓', '1'],
    ]);
    expect(tableRows(parts.get('Stage progress')).map((row) => row.slice(0, 2))).toEqual([
      ['analysis', '40.0%'],
      ['loading', '100.0%'],
    ]);
    const orders = tableRows(parts.get('Work orders'));
    expect(orders.map((row) => row.slice(0, 6))).toEqual(
      Object.values(input.workflow.workOrders).map((o) => [o.id, o.taskType, o.state, o.priority, `${o.attempts}/${o.maxAttempts}`, o.attempt?.agentId ?? o.history.at(-1)?.agentId ?? '—']),
    );
    expect(tableRows(parts.get('Agents and their performance'))).toEqual([
      ['csv-agent', 'loader', 'csv', '3', '1', '1', '0', '50.0%', '250 ms', '250 ms'],
      ['stats-agent', 'analyst', 'stats', '2', '1', '1', '0', '50.0%', '250 ms', '250 ms'],
    ]);
    const timeline = parts.get('Execution timeline')!.find((t): t is Tokens.List => t.type === 'list')!;
    const events = timeline.items.map((item) => plain(item.tokens));
    expect(events[0]).toBe('1970-01-01T00:00:01.000Z Workflow created');
    expect(events).toContain(`1970-01-01T00:00:02.260Z Work order analyze attempt 1 on stats-agent ended: failed: disk full ${HOSTILE}`);
    expect(events).toContain('1970-01-01T00:00:03.510Z Work order analyze completed');
    const times = events.map((e) => e.slice(0, 24));
    expect(times).toEqual([...times].sort());
  });

  it('the data inventory lists each data reference in every format when the workflow has them', () => {
    const input = realisticWorkflow().input();
    input.workflow = withData(input.workflow);
    const { json, markdown, html } = render(input);
    expect(JSON.parse(json.body).statistics.dataInventory).toEqual({ count: 3, byStatus: { missing: 1, valid: 2 }, totalBytes: 6144 });
    expect(tableRows(sections(markdown.body).get('Data inventory')).map((row) => [row[0], row[1], row[4], row[7]])).toEqual([
      ['ref-1', 'data/part-1.csv', '1.0 KiB', 'valid'],
      ['ref-2', `data/${HOSTILE}.csv`, '2.0 KiB', 'valid'],
      ['ref-3', 'data/part-3.csv', '3.0 KiB', 'missing'],
    ]);
    const table = html.body.match(/<table id="data-inventory-table">([\s\S]*?)<\/table>/)![1]!;
    const rows = table.match(/<tbody>([\s\S]*?)<\/tbody>/)![1]!.match(/<tr>/g)!;
    expect(rows).toHaveLength(3);
    expect(html.body).toMatch(/<input id="data-search" type="search"/);
  });

  it('the HTML report is a self-contained page: meta tags, one SVG per chart, no external URL and only its own script', () => {
    const input = realisticWorkflow().input();
    const { body, hash, contentType } = renderReport(input, 'html');
    expect(contentType).toBe('text/html; charset=utf-8');
    expect(body.startsWith('<!DOCTYPE html>')).toBe(true);
    const head = body.slice(body.indexOf('<head>'), body.indexOf('</head>'));
    expect(head).toContain(`<meta name="switchboard-version" content="${input.version}">`);
    expect(head).toContain(`<meta name="switchboard-hash" content="${hash}">`);
    expect(head).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;/);
    expect(head).toMatch(/<style>[\s\S]+<\/style>/);
    const charts = [...body.matchAll(/<svg class="chart chart-([a-z]+)"/g)].map((m) => m[1]);
    expect(charts.sort()).toEqual(['kpis', 'progress', 'timeline']);
    expect(body.match(/<svg/g)).toHaveLength(3);
    expect(body.match(/<\/svg>/g)).toHaveLength(3);
    const progress = body.match(/<svg class="chart chart-progress"[\s\S]*?<\/svg>/)![0];
    expect(progress.match(/class="fill /g)).toHaveLength(1 + Object.keys(input.workflow.stages).length);
    const kpis = body.match(/<svg class="chart chart-kpis"[\s\S]*?<\/svg>/)![0];
    expect(kpis.match(/class="target"/g)).toHaveLength(2);
    const timeline = body.match(/<svg class="chart chart-timeline"[\s\S]*?<\/svg>/)![0];
    expect(timeline.match(/class="bar outcome-/g)).toHaveLength(5); // four finished attempts and the running one
    expect(body.match(/<section id="/g)).toHaveLength(8);
    expect(body.match(/<\/section>/g)).toHaveLength(8);
    // Nothing loads from anywhere: no absolute or protocol-relative src/href, no external script.
    expect(body).not.toMatch(/\s(?:src|href)\s*=\s*["']?(?:[a-z]+:|\/\/)/i);
    expect(body).not.toMatch(/<script[^>]*\ssrc/i);
    expect(body).not.toMatch(/<link\s/i);
    expect([...body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1])).toEqual([SEARCH_SCRIPT]);
    // Without data references, the section says so and has no search table.
    expect(body).toContain('<p>No data references.</p>');
    expect(body).not.toContain('data-inventory-table"');
  });

  it('keeps user text with <script> or | pipe as text in every format', () => {
    const input = realisticWorkflow().input();
    input.workflow = withData(input.workflow);
    const { markdown, html } = render(input);
    expect(markdown.body).not.toContain('<script>');
    expect(html.body).not.toContain('<script>alert');
    expect(html.body.match(/<script/g)).toHaveLength(1);
    expect(html.body).toContain('Sneaky &lt;script&gt;alert(1)&lt;/script&gt; | pipe');
    // The URL in the query is text, not a link.
    expect(html.body).toContain('https://example.com/data.csv');
    expect(html.body).not.toContain('<a href="https');
    // Each table row keeps its column count (no pipe broke a cell).
    for (const [title, tokens] of sections(markdown.body)) {
      const table = tokens.find((t): t is Tokens.Table => t.type === 'table');
      if (table) for (const row of table.rows) expect(row, title).toHaveLength(table.header.length);
    }
  });

  it('states the version and content hash in every format, and the hash checks out by its definition', () => {
    const input = realisticWorkflow().input();
    for (const report of renderReports(input)) {
      expect(report.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(verifyReportHash(report.body, report.hash)).toBe(true);
      expect(verifyReportHash(report.body.replace('Data analysis', 'Data analysed'), report.hash)).toBe(false);
      // User text that happens to be the placeholder survives.
      expect(report.body).toContain(HASH_PLACEHOLDER);
      expect(report.fileName).toBe(`report-v${input.version}.${{ json: 'json', markdown: 'md', html: 'html' }[report.format]}`);
    }
    const { json, markdown } = render(input);
    expect(JSON.parse(json.body).report.hash).toBe(json.hash);
    expect(markdown.body).toContain(`state version ${input.version} of workflow \`customer-insights\`, content hash \`${markdown.hash}\``);
  });

  it('gives byte-identical output for the same version, whatever the key order of the document', () => {
    const { input } = realisticWorkflow();
    const first = render(input());
    const again = render(input());
    const reordered = input();
    reordered.workflow = reverseKeys(reordered.workflow);
    reordered.agents = reverseKeys(reordered.agents);
    const shuffled = render(reordered);
    for (const format of ['json', 'markdown', 'html'] as const) {
      expect(again[format].body).toBe(first[format].body);
      expect(again[format].hash).toBe(first[format].hash);
      expect(shuffled[format].body).toBe(first[format].body);
    }
  });

  it('describes each agent as the workflow recorded it: byte-identical without the pool, and unchanged by a later re-registration', () => {
    const { d, workflowId, input } = realisticWorkflow();
    const withPool = render(input());
    const withoutPool = render({ ...input(), agents: {} });
    // The agent comes back as something else: the workflow keeps what it was when it worked there.
    d.register('csv-agent', { agentType: 'renamed', capabilities: ['other'] });
    const reregistered = render(inputOf(d, workflowId));
    for (const format of ['json', 'markdown', 'html'] as const) {
      expect(withoutPool[format].body).toBe(withPool[format].body);
      expect(reregistered[format].body).toBe(withPool[format].body);
    }
    expect(JSON.parse(withoutPool.json.body).statistics.agents.map((a: { agentType: string; capabilities: string[] }) => [a.agentType, a.capabilities])).toEqual([
      ['loader', ['csv']],
      ['analyst', ['stats']],
    ]);
  });

  it('reads the pool only for an agent record written before the workflow kept type and capabilities', () => {
    const { input } = realisticWorkflow();
    const mixed = input();
    // csv-agent's record is an older one; stats-agent has since left the pool.
    delete mixed.workflow.agents['csv-agent']!.agentType;
    delete mixed.workflow.agents['csv-agent']!.capabilities;
    const pool = { 'csv-agent': mixed.agents['csv-agent']! };
    const agents = (report: Report) => JSON.parse(report.body).statistics.agents.map((a: { agentType: string | null; capabilities: string[] | null }) => [a.agentType, a.capabilities]);
    expect(agents(renderReport({ ...mixed, agents: pool }, 'json'))).toEqual([
      ['loader', ['csv']],
      ['analyst', ['stats']],
    ]);
    expect(agents(renderReport({ ...mixed, agents: {} }, 'json'))).toEqual([
      [null, null],
      ['analyst', ['stats']],
    ]);
  });

  it('prints a KPI value below 1 to four significant digits: a small current and target are never shown as 0', () => {
    const { d, workflowId } = realisticWorkflow();
    d.run('kpi.add', AddKpiInput.parse({ workflowId, id: 'drift', name: 'Drift', target: 0.00002, direction: 'lower' }));
    d.run('kpi.record', { workflowId, kpiId: 'drift', value: 0.00003 });
    const rows = tableRows(sections(render(inputOf(d, workflowId)).markdown.body).get('KPIs against targets'));
    expect(rows.find((row) => row[0] === 'Drift')).toEqual(['Drift', '0.00003', '0.00002', '—', 'lower', '✗', '1']);
    expect([1200, 2.25, 0.5, 1 / 3, 0.012345, 0, -0.00004].map(decimal)).toEqual(['1200', '2.25', '0.5', '0.3333', '0.01235', '0', '-0.00004']);
  });

  it('gives a different hash for a different version', () => {
    const { d, workflowId, input } = realisticWorkflow();
    const before = render(input());
    d.advance(5);
    d.run('workflow.complete', { workflowId });
    const after = render(inputOf(d, workflowId));
    const relabelled = render({ ...input(), version: input().version + 1 });
    for (const format of ['json', 'markdown', 'html'] as const) {
      expect(after[format].hash).not.toBe(before[format].hash);
      expect(relabelled[format].hash).not.toBe(before[format].hash);
    }
    expect(JSON.parse(after.json.body).workflow.status).toBe('completed');
  });

  it('names who generated the report when told, and never the wall clock', () => {
    const { d, workflowId } = realisticWorkflow();
    const { markdown, json } = render(inputOf(d, workflowId, 'auto-documentation'));
    expect(markdown.body).toContain('**Generated by:** auto-documentation');
    expect(JSON.parse(json.body).report.generatedBy).toBe('auto-documentation');
    const year = String(new Date().getUTCFullYear());
    expect(markdown.body).not.toContain(year);
  });

  it('renders a workflow with 2000 work orders: the 500 most recent orders and the latest 500 events, with notes', () => {
    const { d, workflowId } = largeWorkflow(2000, 300);
    const input = inputOf(d, workflowId);
    const { json, markdown, html } = render(input);
    const parts = sections(markdown.body);
    const orders = tableRows(parts.get('Work orders'));
    expect(orders).toHaveLength(500);
    expect(orders[0]![0]).toBe('job-01501');
    expect(orders.at(-1)![0]).toBe('job-02000');
    expect(markdown.body).toContain('Showing the 500 most recent of 2000 work orders; the JSON report lists them all.');
    expect(markdown.body).toMatch(/2000 work orders: 1699 queued, 1 offered, 300 completed\./);
    expect(markdown.body).toContain('Showing the latest 500 of 903 events.');
    const timeline = parts.get('Execution timeline')!.find((t): t is Tokens.List => t.type === 'list')!;
    expect(timeline.items).toHaveLength(500);
    expect(html.body).toContain('Showing the 500 most recent of 2000 work orders');
    expect(html.body.match(/class="bar outcome-/g)).toHaveLength(60);
    expect(Object.keys(JSON.parse(json.body).workflow.workOrders)).toHaveLength(2000);
  });

  it('computes mean and nearest-rank p95 durations', () => {
    expect(durationStats([])).toEqual({ count: 0, meanMs: null, p95Ms: null });
    expect(durationStats([30, 10, 20])).toEqual({ count: 3, meanMs: 20, p95Ms: 30 });
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(durationStats(hundred)).toEqual({ count: 100, meanMs: 51, p95Ms: 95 });
  });

  it('writes durations in the largest unit that keeps them readable, never as 60.0 s or 60 s', () => {
    const cases: Array<[number, string]> = [
      [850, '850 ms'],
      [12_340, '12.3 s'],
      [59_949, '59.9 s'],
      [59_950, '1 min 00 s'],
      [59_999, '1 min 00 s'],
      [245_000, '4 min 05 s'],
      [3_599_600, '1 h 00 min'],
      [7_380_000, '2 h 03 min'],
    ];
    for (const [ms, text] of cases) expect(duration(ms), String(ms)).toBe(text);
  });

  it('writes a percentage with one decimal, never 100.0% for what is not done', () => {
    const cases: Array<[number, string]> = [
      [0, '0.0%'],
      [33.33, '33.3%'],
      [99.94, '99.9%'],
      [99.95, '99.9%'],
      [99.99, '99.9%'],
      [100, '100.0%'],
    ];
    for (const [value, text] of cases) expect(percent(value), String(value)).toBe(text);
  });

  it('writes sizes in the largest binary unit, never as 1024.0 of the one below', () => {
    const cases: Array<[number, string]> = [
      [1023, '1023 B'],
      [1024, '1.0 KiB'],
      [1_048_524, '1023.9 KiB'],
      [1_048_575, '1.0 MiB'],
      [1_073_741_823, '1.0 GiB'],
      [5 * 1024 ** 5, '5120.0 TiB'],
    ];
    for (const [bytes, text] of cases) expect(byteSize(bytes), String(bytes)).toBe(text);
  });
});

describe('big reports kept between renders', () => {
  it('are not handed out for another workflow created under the same id that reached the same version', async () => {
    const renderer = new ReportRenderer();
    onTestFinished(() => renderer.close());
    const first = largeWorkflow(3000, 5);
    const again = largeWorkflow(3000, 5);
    // The same id and version, created a minute later (the first was pruned from the archive meanwhile).
    again.d.state.workflows.get(again.workflowId)!.createdAt += 60_000;
    expect(again.d.state.versions.get(again.workflowId)).toBe(first.d.state.versions.get(first.workflowId));
    const text = async (d: typeof first.d) => Buffer.concat((await renderer.render(d.state, first.workflowId, ['json']))[0]!.parts).toString('utf8');
    const before = JSON.parse(await text(first.d)) as { workflow: { createdAt: number } };
    const after = JSON.parse(await text(again.d)) as { workflow: { createdAt: number } };
    expect(after.workflow.createdAt).toBe(before.workflow.createdAt + 60_000);
  });
});

describe('reports of a workflow on a hub', () => {
  /** Control characters and bidirectional overrides: printed by `switchboard report`, they would drive the terminal. */
  const TERMINAL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

  it('shows the control characters clients wrote in KPI, stage and data reference text as ? in the HTML report, as in the Markdown one', async () => {
    const wf = await (await control(await startHub())).createWorkflow({ userQuery: 'escapes', config: { enableDataValidation: false } });
    await wf.start();
    // Retitles the terminal, clears the screen, rewrites the line, and reverses what follows.
    const hostile = 'a\x1b]0;owned\x07 \x1b[2J\r \u009b31m \u202eevil';
    await wf.addKpi({ name: `kpi ${hostile}`, target: 1, unit: `u ${hostile}` });
    await wf.updateProgress(`stage ${hostile}`, 10);
    await wf.addDataReference({ path: `s3://lake/${hostile}.csv`, description: `data ${hostile}\r\nnext line`, dataType: `type ${hostile}`, tags: [`tag ${hostile}`] });
    for (const format of ['markdown', 'html'] as const) {
      const { body } = await wf.report(format);
      expect(body.match(TERMINAL), format).toBeNull();
      for (const label of ['kpi', 'u', 'stage', 'data', 'type', 'tag']) expect(body, format).toContain(`${label} a?`);
    }
  });

  it('draws a KPI chart with numbers, not NaN, for values near the largest a double holds', async () => {
    const wf = await (await control(await startHub())).createWorkflow({ userQuery: 'huge KPIs' });
    await wf.start();
    await wf.addKpi({ id: 'huge', name: 'huge', target: Number.MAX_VALUE });
    await wf.recordKpi('huge', Number.MAX_VALUE);
    await wf.addKpi({ id: 'half', name: 'half', target: Number.MAX_VALUE });
    await wf.recordKpi('half', Number.MAX_VALUE / 2);
    const chart = (await wf.report('html')).body.match(/<svg class="chart chart-kpis"[\s\S]*?<\/svg>/)![0];
    expect(chart).not.toContain('NaN');
    // Both targets at the same place; the bars at the target and at half of it.
    expect([...chart.matchAll(/class="target" x1="([\d.]+)"/g)].map((m) => m[1])).toEqual(['543.6', '543.6']);
    expect([...chart.matchAll(/class="fill fill-\w+" x="180" y="[\d.]+" width="([\d.]+)"/g)].map((m) => m[1])).toEqual(['363.6', '181.8']);
  });
});
