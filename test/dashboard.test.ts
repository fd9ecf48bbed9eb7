import { mkdirSync } from 'node:fs';
import type { Browser, Page, Route, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { agent, control, startHub, TOKENS } from './helpers/hub.ts';
import { chromiumMissing, launchChromium } from './helpers/browser.ts';
import { deferred } from './helpers/wait.ts';

const missing = chromiumMissing();
/** Work orders in the big workflow: about 50 MB of JSON as a whole document. */
const BIG = 100_000;
if (missing) console.warn(`dashboard test skipped: ${missing}`);

/** One Chromium for the file; each test has a context of its own, which shares nothing with the others'. */
let browser: Browser | undefined;
beforeAll(async () => {
  if (!missing) browser = await launchChromium();
});
afterAll(() => browser?.close());

/** A page in a fresh context of the file's Chromium, closed when the test ends. */
async function newPage() {
  const context = await browser!.newContext();
  onTestFinished(() => context.close());
  return context.newPage();
}

/** The work orders the page's table shows, as `id:state`. */
function orderRows(page: Page): Promise<string[]> {
  return page.$$eval('#orders tr[data-work-order]', (rows) => rows.map((row) => `${row.getAttribute('data-work-order')}:${row.getAttribute('data-state')}`));
}

describe.skipIf(missing !== undefined)('live dashboard in a real browser', () => {
  it('shows an agent’s progress update on the page within a second', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'Analyze customer data' });
    await wf.start();
    const page = await newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    // The banner's link: the token in the fragment, which no request carries.
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(`${hub.url}/#token=${TOKENS.monitor}`);
    await page.waitForSelector(`#workflows tr[data-workflow="${wf.id}"]`, { timeout: 10_000 });
    expect(new URL(page.url()).hash).toBe('');
    expect(requested.filter((url) => url.includes(TOKENS.monitor))).toEqual([]);

    const worker = await agent(hub, { agentId: 'analyst-1', agentType: 'analysis', capabilities: ['statistics'] });
    const reported = deferred();
    const finish = deferred();
    await worker.onTask('analysis', async (_task, ctx) => {
      await ctx.progress(42, 'crunching numbers');
      reported.resolve();
      await finish.promise;
      return { result: 'done' };
    });
    await wf.createWorkOrder({ id: 'job-1', taskType: 'analysis', requirements: ['statistics'] });
    await reported.promise;
    // The update is acknowledged: the page must show it within a second.
    await page.waitForSelector('#orders tr[data-work-order="job-1"][data-progress="42"]', { timeout: 1000 });
    expect(await page.textContent('#orders tr[data-work-order="job-1"]')).toContain('crunching numbers');
    expect(await page.getAttribute('#agents tr[data-agent="analyst-1"]', 'data-status')).toBe('busy');

    finish.resolve();
    await page.waitForSelector('#orders tr[data-work-order="job-1"][data-state="completed"]', { timeout: 5000 });
    mkdirSync('test-results', { recursive: true });
    await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
    expect(await page.textContent('#events')).toContain('job-1');
    expect(errors).toEqual([]);
  });

  it('says it has no token before one is given, and opens with the token of a link pasted into the tab (only its fragment changes)', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'opened from a pasted link' });
    const page = await newPage();
    await page.goto(`${hub.url}/`);
    await page.waitForSelector('#login');
    expect(await page.textContent('#status')).toBe('no token');
    // A wrong link first, then the right one, each pasted into the same tab.
    await page.goto(`${hub.url}/#token=not-a-token-of-it`);
    await page.waitForSelector('#status.down', { timeout: 5000 });
    expect(await page.textContent('#status')).toContain('refused the token: unknown token');
    await page.goto(`${hub.url}/#token=${TOKENS.monitor}`);
    await page.waitForSelector(`#workflows tr[data-workflow="${wf.id}"]`, { timeout: 5000 });
    expect(await page.textContent('#status')).toBe('live');
    expect(new URL(page.url()).hash).toBe('');
  });

  it('opens a workflow of 100,000 work orders from its views: its counts and newest orders, under 1 MB transferred', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'A very big batch' });
    for (let first = 0; first < BIG; first += 1000) {
      await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: i % 2 ? 'extract' : 'load', description: 'one of many' })));
    }
    const page = await newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    let received = 0;
    page.on('response', (response) => void response.body().then((body) => (received += body.length), () => undefined));
    page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => (received += typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length)));
    await page.goto(`${hub.url}/?token=${TOKENS.monitor}`);
    await page.waitForSelector(`#workflows tr[data-workflow="${wf.id}"]`, { timeout: 20_000 });
    await page.waitForSelector('#orders tr[data-work-order="o99999"]', { timeout: 20_000 });
    expect(await page.textContent(`#workflows tr[data-workflow="${wf.id}"]`)).toContain(`${BIG} pending`);
    expect(await page.locator('#orders tr[data-work-order]').count()).toBe(100);
    expect(await page.textContent('#orders-title')).toContain(`newest 100 of ${BIG}`);

    // Only the failed ones: the page asks for another view of the same workflow.
    await wf.cancelWorkOrder('o5', 'not needed');
    await page.selectOption('#order-state', 'cancelled');
    await page.waitForSelector('#orders tr[data-work-order="o5"][data-state="cancelled"]', { timeout: 5000 });
    expect(await page.locator('#orders tr[data-work-order]').count()).toBe(1);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(1_000_000);
    expect(errors).toEqual([]);
  });
  it('shows the orders of the state picked last when the pick changes before the previous pick’s orders arrived, and drops the earlier page', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf-1', userQuery: 'filters' });
    await wf.start();
    // One order cancelled, one queued (no agent takes its type): newest first, as also by id when both come in one millisecond.
    await wf.createWorkOrder({ id: 'dropped', taskType: 'nobody' });
    await wf.cancelWorkOrder('dropped');
    await wf.createWorkOrder({ id: 'waits', taskType: 'nobody' });

    const page = await newPage();
    // The monitor connection goes through here. The hub's messages are held from the request for
    // queued orders until the request for cancelled ones has gone out, as a distant hub would hold
    // them: the page picks again before the first answer arrives. Both answers then arrive in order.
    let hold = false;
    const held: Array<() => void> = [];
    let released = 0;
    const sent: string[] = [];
    const subscribes = (text: string, state: string) => text.includes('"subscribe"') && text.includes(`"${state}"`);
    await page.routeWebSocket(/\/socket\.io\//, (ws: WebSocketRoute) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const text = String(message);
        sent.push(text);
        server.send(message);
        if (subscribes(text, 'queued')) hold = true;
        if (subscribes(text, 'cancelled')) {
          hold = false;
          for (const release of held.splice(0)) release();
        }
      });
      server.onMessage((message) => {
        if (!hold) return ws.send(message);
        held.push(() => {
          ws.send(message);
          released++;
        });
      });
    });
    await page.goto(`${hub.url}/#token=${TOKENS.monitor}`);
    await expect.poll(() => orderRows(page), { timeout: 10_000 }).toEqual(['waits:queued', 'dropped:cancelled']);

    await page.selectOption('#order-state', 'queued');
    await expect.poll(() => hold, { timeout: 5000 }).toBe(true);
    await page.selectOption('#order-state', 'cancelled');
    await expect.poll(() => sent.some((text) => subscribes(text, 'cancelled')), { timeout: 5000 }).toBe(true);
    // The answer for queued orders went to the page before the one for cancelled orders: once the
    // table shows one page, both have been handled.
    expect(released).toBeGreaterThan(0);
    await expect.poll(() => orderRows(page).then((rows) => rows.length), { timeout: 5000 }).toBe(1);
    expect(await orderRows(page)).toEqual(['dropped:cancelled']);
    expect(await page.inputValue('#order-state')).toBe('cancelled');
    // The superseded page of queued orders is no longer followed; the page shown is.
    const unsubscribes = (state: string) => sent.some((text) => text.includes('"unsubscribe"') && text.includes(`state=${state}`));
    await expect.poll(() => unsubscribes('queued'), { timeout: 5000 }).toBe(true);
    expect(unsubscribes('cancelled')).toBe(false);
  });
  it('follows the 50 newest workflows from one page of the list, and begins no listing while one is unanswered', async () => {
    const hub = await startHub();
    const client = await control(hub);
    for (let i = 0; i < 120; i++) await client.createWorkflow({ id: `wf-${String(i).padStart(3, '0')}`, userQuery: `query ${i}` });

    const page = await newPage();
    // Listings counted as the page begins them, in the page: a count read after the page's timers
    // ran has every listing they began.
    await page.addInitScript(() => {
      const counter = window as unknown as { listings: number };
      const fetchFromPage = window.fetch.bind(window);
      counter.listings = 0;
      window.fetch = (input, init) => {
        if (String(input).startsWith('/api/workflows')) counter.listings++;
        return fetchFromPage(input, init);
      };
    });
    const begun = () => page.evaluate(() => (window as unknown as { listings: number }).listings);
    const headers: Array<Promise<number>> = [];
    page.on('response', (response) => {
      if (new URL(response.url()).pathname !== '/api/workflows') return;
      // -1: a body the closing page could not give.
      headers.push(response.json().then((page: { items: unknown[] }) => page.items.length, () => -1));
    });
    // The second listing is left unanswered until released.
    const held: Route[] = [];
    let listings = 0;
    await page.route((url) => url.pathname === '/api/workflows', (route) => (++listings === 2 ? held.push(route) : route.continue()));
    // The page's timers run when the test moves its clock on, not every 5 s.
    await page.clock.install();
    await page.goto(`${hub.url}/#token=${TOKENS.monitor}`);
    await page.waitForSelector('#workflows tr[data-workflow="wf-119"]', { timeout: 10_000 });
    await expect.poll(() => page.textContent('#counts'), { timeout: 10_000 }).toContain('50 workflows');
    expect(await page.locator('#workflows tr[data-workflow="wf-069"]').count()).toBe(0);

    await expect.poll(async () => (await page.clock.fastForward(5000), held.length), { timeout: 10_000 }).toBe(1);
    await page.clock.fastForward(5000);
    await page.clock.fastForward(5000);
    expect(await begun()).toBe(2);
    // Answered, the listing is followed by the next one.
    await held[0]!.continue();
    await expect.poll(async () => (await page.clock.fastForward(5000), begun()), { timeout: 10_000 }).toBe(3);
    await expect.poll(() => headers.length, { timeout: 10_000 }).toBe(3);
    expect(await Promise.all(headers)).toEqual([50, 50, 50]);
  });
});
