import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Agent } from '../shared/schemas/agent.ts';
import { formatValue } from '../server/http/dashboard/charts.ts';
import { agent, control, monitor, startHub, TOKENS } from './helpers/hub.ts';
import { chromiumMissing, launchChromium } from './helpers/browser.ts';
import { deferred } from './helpers/wait.ts';

const missing = chromiumMissing();
if (missing) console.warn(`dashboard charts test skipped: ${missing}`);

/** One Chromium for the file; each test has a context of its own, which shares nothing with the others'. */
let browser: Browser | undefined;
beforeAll(async () => {
  if (!missing) browser = await launchChromium();
});
afterAll(() => browser?.close());

/** A page of Chromium at `width` × 900 on the dashboard, in a fresh context, failing the test on any script error. */
async function openDashboard(url: string, width = 1280): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width, height: 900 } });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  onTestFinished(() => expect(errors).toEqual([]));
  await page.goto(`${url}/?token=${TOKENS.monitor}`);
  return page;
}

/** The [x, y] points of an SVG polyline. */
async function points(page: Page, selector: string): Promise<Array<[number, number]>> {
  const text = (await page.getAttribute(selector, 'points')) ?? '';
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((pair) => pair.split(',').map(Number) as [number, number]);
}

/** Waits until the hub's agent pool satisfies `predicate` for the agent `id`. */
async function untilAgent(hub: { url: string }, id: string, predicate: (agent: Agent) => boolean): Promise<void> {
  const pool = await (await monitor(hub)).subscribe('@agents');
  await pool.until((state) => {
    const agents = state as Record<string, Agent> | undefined;
    return agents?.[id] !== undefined && predicate(agents[id]);
  }, { what: `agent ${id}`, timeoutMs: 10_000 });
}

describe('a KPI value as the charts write it', () => {
  it('is a plain number of three significant digits, never in exponent notation, however near 1000 or 0', () => {
    // 999.7 rounds to 1000 as 1000.2 does, not to "1.00e+3".
    expect([1000.2, 999.5, 999.7, -999.9].map((v) => formatValue(v, 'ms'))).toEqual(['1000 ms', '1000 ms', '1000 ms', '-1000 ms']);
    expect([1.2e-7, -0.000012345, 0.0004567].map((v) => formatValue(v))).toEqual(['0.00000012', '-0.0000123', '0.000457']);
    expect([123456.7, 1e21, -0].map((v) => formatValue(v))).toEqual(['123457', '1000000000000000000000', '0']);
  });
});

describe.skipIf(missing !== undefined)('dashboard charts in a real browser', () => {
  it('draws the selected workflow’s KPI history against its target, its objectives and its stages as the workflow holds them', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'Train a churn model' });
    await wf.start();
    await wf.addObjective({ id: 'drivers', name: 'Find the churn drivers', target: 'top 5' });
    await wf.addObjective({ id: 'model', name: 'Retention model', target: 'AUC ≥ 0.85' });
    await wf.updateObjective('drivers', { status: 'completed', progress: 100 });
    await wf.updateObjective('model', { status: 'in_progress', progress: 40 });
    await wf.addKpi({ id: 'auc', name: 'Model AUC', target: 0.85 });
    await wf.addKpi({ id: 'latency', name: 'Latency', target: 800, unit: 'ms', direction: 'lower' });
    for (let i = 0; i < 28; i++) await wf.recordKpi('auc', 0.61 + (i % 7) * 0.05);
    await wf.updateProgress('ingest', 100);
    await wf.updateProgress('model', 35);

    const page = await openDashboard(hub.url);
    const auc = `#workflow[data-workflow="${wf.id}"] svg[data-kpi="auc"]`;
    await page.waitForSelector(`${auc} polyline[data-points="28"]`, { timeout: 10_000 });
    const workflow = await wf.get();
    const kpi = workflow.kpis.auc!;
    expect(kpi.samples).toBe(28);
    const drawn = await points(page, `${auc} polyline.history`);
    expect(drawn).toHaveLength(kpi.history.length);
    // The points above the dashed target line are the samples above the target (y grows downwards).
    const targetY = Number(await page.getAttribute(`${auc} line.target`, 'y1'));
    expect(drawn.filter(([, y]) => y < targetY).length).toBe(kpi.history.filter((s) => s.value > kpi.target).length);
    expect(drawn.filter(([, y]) => y > targetY).length).toBe(kpi.history.filter((s) => s.value < kpi.target).length);
    // Oldest first, left to right.
    expect(drawn.map(([x]) => x)).toEqual([...drawn.map(([x]) => x)].sort((a, b) => a - b));
    // A KPI with no samples yet draws its target and no point.
    expect(await points(page, `#workflow svg[data-kpi="latency"] polyline.history`)).toEqual([]);

    const objectives = await page.$$eval('#objectives tr[data-objective]', (rows) => rows.map((r) => [r.getAttribute('data-objective'), r.getAttribute('data-status'), Number(r.getAttribute('data-progress'))]));
    expect(objectives).toEqual(Object.values(workflow.objectives).map((o) => [o.id, o.status, o.progress]));
    const stages = await page.$$eval('#stages tr[data-stage]', (rows) => rows.map((r) => [r.getAttribute('data-stage'), Number(r.getAttribute('data-progress'))]));
    expect(stages).toEqual(Object.entries(workflow.stages).map(([id, s]) => [id, s.progress]));

    // Live: one more sample is one more point.
    await wf.recordKpi('auc', 0.9);
    await page.waitForSelector(`${auc} polyline[data-points="29"]`, { timeout: 2000 });
    await wf.updateProgress('report', 10);
    await page.waitForSelector('#stages tr[data-stage="report"][data-progress="10"]', { timeout: 2000 });
  });

  it('links the workflow’s HTML report, which answers 200 with HTML and opens with the page’s token', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'Report me' });
    const page = await openDashboard(hub.url);
    await page.waitForSelector(`#workflow[data-workflow="${wf.id}"] #report-link`, { timeout: 10_000 });
    const href = await page.$eval('#report-link', (a) => (a as HTMLAnchorElement).href);
    expect(new URL(href).pathname).toBe(`/api/workflows/${wf.id}/report.html`);
    // The token is not in the link: the page sends it.
    expect(href).not.toContain(TOKENS.monitor);
    const response = await fetch(href, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/html');
    expect(await response.text()).toContain('Report me');

    const [tab] = await Promise.all([page.waitForEvent('popup'), page.click('#report-link')]);
    await tab.waitForURL(/^blob:/, { timeout: 10_000 });
    await tab.waitForSelector('text=Report me', { timeout: 10_000 });
  });

  it('charts the orders that complete and fail per interval with the queue depth, each agent’s load, and an order’s attempt and last error', async () => {
    const hub = await startHub({ backoffBaseMs: 0 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'Throughput' });
    await wf.start();
    const page = await openDashboard(hub.url);
    await page.waitForSelector(`#workflow[data-workflow="${wf.id}"] svg.throughput-chart`, { timeout: 10_000 });

    const worker = await agent(hub, { agentId: 'worker-1', agentType: 'etl', maxConcurrentTasks: 4, logger: null });
    const hold = deferred();
    onTestFinished(() => hold.resolve());
    await worker.onTask('work', async (task, ctx) => {
      if (task.workOrderId.startsWith('bad')) throw new Error(`bad input in ${task.workOrderId}`);
      if (task.workOrderId === 'flaky') {
        if (ctx.attempt === 1) throw new Error('flaky: connection reset');
        await hold.promise;
      }
      return { result: 'ok' };
    });
    await wf.createWorkOrders([
      ...['ok-1', 'ok-2', 'ok-3'].map((id) => ({ id, taskType: 'work' })),
      ...['bad-1', 'bad-2'].map((id) => ({ id, taskType: 'work', maxAttempts: 1 })),
      { id: 'flaky', taskType: 'work' },
      // No agent takes these: they stay queued.
      ...['later-1', 'later-2'].map((id) => ({ id, taskType: 'nobody-serves-this' })),
    ]);

    const chart = 'svg.throughput-chart[data-completed="3"][data-failed="2"][data-queued="2"]';
    await page.waitForSelector(chart, { timeout: 10_000 });
    const bars = async (kind: string) => (await page.$$eval(`svg.throughput-chart rect.${kind}`, (rects) => rects.map((r) => Number(r.getAttribute('data-count'))))).reduce((a, b) => a + b, 0);
    expect(await bars('completed')).toBe(3);
    expect(await bars('failed')).toBe(2);
    // Nobody takes the orders of 'nobody-serves-this': the page says so beside the queue, on their rows and in the list.
    await page.waitForSelector('#unservable[data-unservable="2"]', { timeout: 10_000 });
    const later = '#orders tr[data-work-order="later-1"] .s-no_capable_agent';
    await page.waitForSelector(later, { timeout: 10_000 });
    expect(await page.getAttribute(later, 'title')).toBe('no connected agent takes task type nobody-serves-this');
    await page.waitForSelector(`tr[data-workflow="${wf.id}"]:has-text("2 queued (2 no agent can take)")`, { timeout: 10_000 });
    const intervals = Number(await page.getAttribute(chart, 'data-intervals'));
    expect(await points(page, `${chart} polyline.queue`)).toHaveLength(intervals);

    // The flaky order runs its second attempt, and its row says so with the first attempt's error.
    const flaky = '#orders tr[data-work-order="flaky"][data-state="running"][data-attempt="2"]';
    await page.waitForSelector(flaky, { timeout: 10_000 });
    expect(await page.textContent(flaky)).toContain('2 / 3');
    expect(await page.textContent(`${flaky} td.error`)).toBe('flaky: connection reset');
    expect(await page.textContent('#orders tr[data-work-order="bad-1"] td.error')).toContain('bad input in bad-1');
    expect(await page.textContent('#orders tr[data-work-order="ok-1"] td.error')).toBe('');

    // worker-1 holds the flaky order now, after four at once: its newest interval peaks between the two.
    const load = 'svg[data-agent-load="worker-1"]';
    await page.waitForSelector('#agents tr[data-agent="worker-1"][data-load="1"]', { timeout: 5000 });
    expect(await page.textContent('#agents tr[data-agent="worker-1"] td.load')).toContain('1 / 4');
    const peak = Number(await page.getAttribute(load, 'data-peak'));
    expect(peak).toBeGreaterThanOrEqual(1);
    expect(peak).toBeLessThanOrEqual(4);
    expect(await points(page, `${load} polyline.load`)).toHaveLength(Number(await page.getAttribute(load, 'data-intervals')));

    hold.resolve();
    await page.waitForSelector('svg.throughput-chart[data-completed="4"]', { timeout: 5000 });
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-charts.png', fullPage: true });
  });

  it('shows an agent within its grace period as disconnected, not busy, and folds agents offline for long behind a toggle', async () => {
    let skew = 0;
    const hub = await startHub({ graceMs: 60_000 }, { clock: () => Date.now() + skew });
    // Went away half an hour ago, by the hub's clock: its grace period ran out then.
    skew = -30 * 60_000;
    const old = await agent(hub, { agentId: 'old-1', agentType: 'render' });
    await old.close();
    await untilAgent(hub, 'old-1', (a) => typeof a.disconnectedSince === 'number');
    skew += 61_000;
    await untilAgent(hub, 'old-1', (a) => a.status === 'offline');
    skew = 0;

    const wf = await (await control(hub)).createWorkflow({ userQuery: 'Grace' });
    await wf.start();
    const holder = await agent(hub, { agentId: 'holder-1', agentType: 'etl' });
    const started = deferred();
    await holder.onTask('work', async (_task, ctx) => {
      started.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    });
    await wf.createWorkOrder({ id: 'held', taskType: 'work' });
    await started.promise;

    const page = await openDashboard(hub.url);
    await page.waitForSelector('#agents tr[data-agent="holder-1"][data-status="busy"]', { timeout: 10_000 });
    expect(await page.locator('#agents tr[data-agent="old-1"]').count()).toBe(0);
    expect(await page.textContent('#offline-toggle')).toBe('show 1 offline');

    // Finishing its work before it exits: closing; then told to stop at once, it leaves its work behind.
    const finishing = holder.close({ finish: true });
    await page.waitForSelector('#agents tr[data-agent="holder-1"][data-status="closing"]', { timeout: 5000 });
    await holder.close();
    await finishing;
    await page.waitForSelector('#agents tr[data-agent="holder-1"][data-status="disconnected"]', { timeout: 5000 });
    // The hub still counts it busy, holding its order, until its grace period ends.
    const pool = await (await control(hub)).listAgents();
    expect(pool.find((a) => a.id === 'holder-1')).toMatchObject({ status: 'busy', load: 1 });
    expect(await page.textContent('#agents tr[data-agent="holder-1"]')).toContain('disconnected');

    await page.click('#offline-toggle');
    await page.waitForSelector('#agents tr[data-agent="old-1"][data-status="offline"]', { timeout: 2000 });
    expect(await page.textContent('#offline-toggle')).toBe('hide 1 offline');
    await page.click('#offline-toggle');
    await page.waitForSelector('#agents tr[data-agent="old-1"]', { state: 'detached', timeout: 2000 });
  });

  it('fits an 800 px wide window: no panel is wider than itself, whatever the length of ids, queries and notes', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const long = 'x'.repeat(60);
    for (let i = 0; i < 3; i++) await client.createWorkflow({ id: `a-workflow-with-a-rather-long-identifier-${i}`, userQuery: `Analyse ${long} and report on ${long}` });
    const wf = await client.createWorkflow({ id: 'the-selected-workflow-with-a-long-id', userQuery: `Selected ${long}` });
    await wf.start();
    await wf.addObjective({ name: `An objective with a long name ${long}`, target: `a target ${long}` });
    await wf.addKpi({ id: 'kpi-1', name: `A KPI with a long name ${long}`, target: 1234.5, unit: 'records per second' });
    for (let i = 0; i < 10; i++) await wf.recordKpi('kpi-1', 1000 + i * 50);
    await wf.updateProgress(`a-stage-with-a-long-name-${long}`, 50);
    for (let i = 0; i < 3; i++) {
      const worker = await agent(hub, { agentId: `an-agent-with-a-long-identifier-${i}`, agentType: `a-long-agent-type-${long}` });
      await worker.setNote(`a note that goes on and on ${long}`);
    }
    await wf.createWorkOrders(Array.from({ length: 5 }, (_, i) => ({ id: `an-order-with-a-long-identifier-${i}-${long.slice(0, 20)}`, taskType: `a-long-task-type-${long.slice(0, 30)}` })));

    const page = await openDashboard(hub.url, 800);
    await page.waitForSelector('#agents tr[data-agent="an-agent-with-a-long-identifier-2"]', { timeout: 10_000 });
    await page.waitForSelector(`#workflow[data-workflow="${wf.id}"] svg[data-kpi="kpi-1"]`, { timeout: 10_000 });
    await page.waitForSelector('#orders tr[data-work-order]', { timeout: 10_000 });
    const panels = await page.$$eval('main > section', (sections) => sections.map((s) => ({ id: s.id, scrollWidth: s.scrollWidth, clientWidth: s.clientWidth })));
    expect(panels.length).toBe(5);
    for (const panel of panels) expect(panel.scrollWidth, panel.id).toBeLessThanOrEqual(panel.clientWidth);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(800);
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard-800.png', fullPage: true });
  });
});
