// Regenerates docs/dashboard.png, the README's picture of the dashboard:
//   npx tsx scripts/dashboard-screenshot.ts [--seconds 60] [--out docs/dashboard.png]
// It starts a hub in a temporary directory with a demo workflow (KPIs recorded as it runs,
// objectives, stages, four agents with some failing attempts, an agent gone within its grace
// period and one offline for long), opens the dashboard in Debian's Chromium and takes a 1280×800
// screenshot once the charts have a minute of history.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connectAgent, connectControl, connectMonitor, type AgentClient } from '../client-sdk/index.ts';
import { createHub } from '../server/index.ts';
import type { Agent } from '../shared/schemas/agent.ts';
import { launchChromium } from '../test/helpers/browser.ts';

const { values: args } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, out: { type: 'string', default: 'docs/dashboard.png' } } });
const RUN_MS = Number(args.seconds) * 1000;
const GRACE_MS = 120_000;
const TOKENS = { admin: 'demo-admin', agent: 'demo-agent', monitor: 'demo-monitor' };

/** The hub's clock runs `skew` ms off: how the demo gets an agent that went offline half an hour ago. */
let skew = 0;
const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-demo-'));
const hub = await createHub(
  {
    port: 0,
    dataDir,
    logLevel: 'silent',
    graceMs: GRACE_MS,
    backoffBaseMs: 500,
    tokens: Object.entries(TOKENS).map(([role, token]) => ({ token, role: role as 'admin' | 'agent' | 'monitor', name: `demo-${role}` })),
  },
  { clock: () => Date.now() + skew },
);
const agents: AgentClient[] = [];
/** Set near the end: extractor-2 loses its connection once it holds work. */
let disconnectSoon = false;
const random = (low: number, high: number) => low + Math.random() * (high - low);

try {
  const monitor = await connectMonitor({ url: hub.url, token: TOKENS.monitor });
  const pool = await monitor.subscribe('@agents');
  const poolHas = (id: string, test: (a: Agent) => boolean) => pool.until((state) => Boolean((state as Record<string, Agent> | undefined)?.[id] && test((state as Record<string, Agent>)[id]!)));

  // An agent that left half an hour ago: it folds away behind "show 1 offline" (the hub marks it
  // offline once its grace period is over, by its clock).
  skew = -30 * 60_000;
  const old = await connectAgent({ url: hub.url, token: TOKENS.agent, agentId: 'gpu-renderer-1', agentType: 'render', capabilities: ['gpu'], logger: null });
  await old.close();
  await poolHas('gpu-renderer-1', (a) => typeof a.disconnectedSince === 'number');
  skew += GRACE_MS + 1000;
  await poolHas('gpu-renderer-1', (a) => a.status === 'offline');
  skew = 0;

  const control = await connectControl({ url: hub.url, token: TOKENS.admin });

  // An earlier workflow, done.
  const nightly = await control.createWorkflow({ userQuery: 'Nightly refresh of the sales warehouse' });
  await nightly.start();
  await nightly.updateProgress('load', 100);
  await nightly.complete();

  const wf = await control.createWorkflow({ userQuery: 'Why do customers churn? Quarterly analysis with a retention model' });
  await wf.start();
  await wf.addObjective({ id: 'drivers', name: 'Identify the top churn drivers', target: 'top 5, ranked', priority: 'high' });
  await wf.addObjective({ id: 'model', name: 'Retention model', target: 'AUC ≥ 0.85' });
  await wf.addObjective({ id: 'publish', name: 'Publish findings to the CRM team', target: 'report + slides', priority: 'low' });
  await wf.updateObjective('drivers', { status: 'completed', progress: 100 });
  await wf.updateObjective('model', { status: 'in_progress', progress: 40 });
  await wf.addKpi({ id: 'auc', name: 'Model AUC', target: 0.85, direction: 'higher' });
  await wf.addKpi({ id: 'rows', name: 'Rows cleaned per second', target: 5000, unit: 'rows/s', direction: 'higher' });
  await wf.addKpi({ id: 'latency', name: 'Scoring latency p95', target: 800, unit: 'ms', direction: 'lower' });
  for (const [stage, progress] of [['ingest', 100], ['clean', 100], ['features', 70], ['model', 20], ['report', 0]] as const) await wf.updateProgress(stage, progress);

  await startAgents();
  await wf.createWorkOrder({ id: 'render-charts', taskType: 'gpu-render', description: 'render the 3-D churn map' });

  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${hub.url}/?token=${TOKENS.monitor}`);
    await page.waitForSelector(`#workflow[data-workflow="${wf.id}"] .kpi-chart`, { timeout: 20_000 });

    const started = Date.now();
    let batch = 0;
    for (let tick = 0; Date.now() - started < RUN_MS; tick++) {
      const elapsed = (Date.now() - started) / RUN_MS;
      // Work arrives in waves, more of it at first, so the queue builds up, then drains.
      if (tick % 3 === 0) {
        const count = Math.round(random(15, 30) * Math.max(0.2, 1 - elapsed * 1.2));
        const orders = Array.from({ length: count }, (_, i) => {
          const taskType = ['extract', 'extract', 'clean', 'train'][(batch + i) % 4]!;
          return { id: `${taskType}-${batch}-${i}`, taskType, description: `${taskType} batch ${batch}`, maxAttempts: 3 };
        });
        if (batch % 4 === 3) orders.push({ id: `extract-${batch}-legacy`, taskType: 'extract', description: 'legacy CRM export', maxAttempts: 2 });
        batch++;
        if (orders.length) await wf.createWorkOrders(orders);
      }
      await wf.recordKpi('auc', 0.62 + 0.22 * elapsed + random(-0.02, 0.02));
      await wf.recordKpi('rows', 3800 + 2200 * elapsed + random(-400, 400));
      await wf.recordKpi('latency', 1200 - 500 * elapsed + random(-60, 60));
      await wf.updateProgress('features', Math.min(100, Math.round(70 + 30 * elapsed * 1.5)));
      await wf.updateProgress('model', Math.round(20 + 45 * elapsed));
      await wf.updateObjective('model', { progress: Math.round(40 + 35 * elapsed) });
      // Near the end an agent loses its connection while it holds work: disconnected, not busy.
      if (elapsed > 0.85) disconnectSoon = true;
      await sleep(2000);
    }
    await page.waitForSelector('#agents tr[data-agent="extractor-2"][data-status="disconnected"]', { timeout: 10_000 });
    mkdirSync(dirname(args.out), { recursive: true });
    await page.screenshot({ path: args.out });
    console.log(`wrote ${args.out}`);
  } finally {
    await browser.close();
  }
  await control.close();
  await monitor.close();
} finally {
  for (const agent of agents) await agent.close();
  await hub.close();
  rmSync(dataDir, { recursive: true, force: true });
}

/** Five agents; some attempts fail, and the legacy exports always do (after their retries, they are dead-lettered). */
async function startAgents(): Promise<void> {
  const specs = [
    { agentId: 'extractor-1', agentType: 'etl', taskTypes: ['extract'], maxConcurrentTasks: 3 },
    { agentId: 'extractor-2', agentType: 'etl', taskTypes: ['extract', 'clean'], maxConcurrentTasks: 2 },
    { agentId: 'trainer-1', agentType: 'ml', taskTypes: ['train'], maxConcurrentTasks: 2 },
    { agentId: 'trainer-2', agentType: 'ml', taskTypes: ['train'], maxConcurrentTasks: 2 },
    { agentId: 'cleaner-1', agentType: 'etl', taskTypes: ['clean'], maxConcurrentTasks: 2 },
  ];
  for (const { taskTypes, ...spec } of specs) {
    const agent = await connectAgent({ url: hub.url, token: TOKENS.agent, logger: null, ...spec });
    for (const taskType of taskTypes) {
      await agent.onTask(taskType, async (task, ctx) => {
        const ms = taskType === 'train' ? random(3000, 7000) : random(600, 2600);
        await ctx.progress(30, `${taskType} of ${task.workOrderId}`);
        if (disconnectSoon && spec.agentId === 'extractor-2') {
          disconnectSoon = false;
          void agent.close();
        }
        await sleep(ms / 2);
        await ctx.progress(70);
        await sleep(ms / 2);
        if (task.workOrderId.endsWith('-legacy')) throw new Error('legacy CRM export: HTTP 504 from crm.internal after 30 s');
        if (Math.random() < 0.1) throw new Error(taskType === 'train' ? 'CUDA out of memory (batch 512)' : 'schema mismatch: column "region" missing');
        return { result: { rows: Math.round(random(1e4, 1e5)) } };
      });
    }
    agents.push(agent);
  }
  await agents[0]!.setNote('pulling from the CRM export');
}
