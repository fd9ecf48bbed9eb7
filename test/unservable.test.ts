import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { WorkflowSummary } from '../shared/schemas/summary.ts';
import type { WorkflowHeader } from '../shared/schemas/workflow.ts';
import { agent, control, monitor, startHub, TOKENS } from './helpers/hub.ts';
import { CLI } from './helpers/process.ts';
import { untilOrder } from './helpers/wait.ts';

/** GETs a hub's JSON route with the monitor token. */
async function getJson<T>(hub: { url: string }, path: string): Promise<T> {
  const response = await fetch(`${hub.url}${path}`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

describe('work that no connected agent can take', () => {
  it('is marked in the work order, counted in the summary over the SDK, a view and HTTP, and clears when an agent declaring its task type registers and runs it', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'render the trailer' });
    await wf.start();
    const cpu = await agent(hub, { agentId: 'cpu-worker', agentType: 'cpu' });
    await cpu.onTask('parse', () => ({ result: 'parsed' }));

    const created = await wf.createWorkOrder({ id: 'frame-1', taskType: 'gpu-render' });
    const marker = { reason: 'no_capable_agent', taskType: 'gpu-render' };
    expect(created).toMatchObject({ state: 'queued', waiting: marker });
    expect((await wf.getWorkOrder('frame-1')).waiting).toEqual(marker);
    expect((await wf.summary()).unservable).toBe(1);
    expect((await getJson<WorkflowSummary>(hub, `/api/workflows/${wf.id}/summary`)).unservable).toBe(1);
    const listed = await getJson<{ items: WorkflowHeader[] }>(hub, '/api/workflows');
    expect(listed.items.find((header) => header.id === wf.id)?.unservable).toBe(1);

    const summary = await (await monitor(hub)).subscribe(wf.id, { view: { kind: 'summary' } });
    await summary.until((view) => view.unservable === 1, { what: 'the summary view counting the unservable order' });

    const gpu = await agent(hub, { agentId: 'gpu-worker', agentType: 'renderer' });
    await gpu.onTask('gpu-render', () => ({ result: 'rendered' }));
    const completed = await untilOrder(hub, wf.id, 'frame-1', 'completed');
    expect(completed).toMatchObject({ waiting: null, result: 'rendered', history: [{ agentId: 'gpu-worker', outcome: 'completed' }] });
    await summary.until((view) => view.unservable === 0 && view.workOrderCounts.completed === 1, { what: 'the summary view counting no unservable order' });
    expect((await getJson<WorkflowSummary>(hub, `/api/workflows/${wf.id}/summary`)).unservable).toBe(0);
  });

  it('names the requirements no agent of the task type holds, until one that holds them registers', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'render in 8K' });
    await wf.start();
    const small = await agent(hub, { agentId: 'small-gpu', agentType: 'renderer', capabilities: ['cuda'] });
    await small.onTask('gpu-render', () => ({ result: 'too small' }));
    await wf.createWorkOrder({ id: 'frame-8k', taskType: 'gpu-render', requirements: ['cuda', 'vram-80g'] });
    expect((await wf.getWorkOrder('frame-8k')).waiting).toEqual({ reason: 'no_capable_agent', missing: ['cuda', 'vram-80g'] });

    const big = await agent(hub, { agentId: 'big-gpu', agentType: 'renderer', capabilities: ['cuda', 'vram-80g'] });
    await big.onTask('gpu-render', () => ({ result: 'rendered in 8K' }));
    expect(await untilOrder(hub, wf.id, 'frame-8k', 'completed')).toMatchObject({ waiting: null, result: 'rendered in 8K' });
  });

  it('shows in switchboard status beside the queued orders, and in its --json', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'renders', userQuery: 'render the trailer' });
    await wf.start();
    await wf.createWorkOrders([
      { id: 'frame-1', taskType: 'gpu-render' },
      { id: 'frame-2', taskType: 'gpu-render' },
    ]);
    // Not spawnSync: the hub answering it runs in this process.
    const status = (...args: string[]) => promisify(execFile)(process.execPath, [...CLI, 'status', '--url', hub.url, '--token', TOKENS.monitor, ...args], { encoding: 'utf8' });
    expect((await status()).stdout).toMatch(/renders\s+in_progress\s+0%\s+2 queued \(2 no agent can take\)/);
    expect(JSON.parse((await status('--json')).stdout).workflows[0]).toMatchObject({ id: 'renders', unservable: 2 });
  });
});
