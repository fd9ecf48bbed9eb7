import { mkdirSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { agent, control, startHub, TOKENS } from './helpers/hub.ts';
import { chromiumMissing, launchChromium } from './helpers/browser.ts';
import { deferred } from './helpers/wait.ts';

const missing = chromiumMissing();
if (missing) console.warn(`dashboard test skipped: ${missing}`);

describe.skipIf(missing !== undefined)('live dashboard in a real browser', () => {
  it('shows an agent’s progress update on the page within a second', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'Analyze customer data' });
    await wf.start();
    const browser = await launchChromium();
    onTestFinished(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${hub.url}/?token=${TOKENS.monitor}`);
    await page.waitForSelector(`#workflows tr[data-workflow="${wf.id}"]`, { timeout: 10_000 });
    expect(new URL(page.url()).search).toBe('');

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
});
