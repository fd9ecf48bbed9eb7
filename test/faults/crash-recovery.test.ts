import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectControl, HubError } from '../../client-sdk/index.ts';
import { recover } from '../../server/store/recovery.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { agent, monitor, TOKENS, tempDir } from '../helpers/hub.ts';
import { HubUnderTest } from './cluster.ts';

const KILLS = Number(process.env.FAULT_KILLS ?? 10);

describe('crash recovery (kill -9 under load)', () => {
  it(`keeps every acknowledged change and completes no work order twice across ${KILLS} kills`, async () => {
    const dataDir = tempDir();
    const hub = await HubUnderTest.create(dataDir, { snapshotAfterBytes: 32 * 1024, graceMs: 60_000, sweepIntervalMs: 50 });
    await hub.start();
    const client = await connectControl({ url: hub.url, token: TOKENS.admin, requestTimeoutMs: 3000 });
    const wf = await client.createWorkflow({ id: 'crash-wf', userQuery: 'survive kill -9' });
    await wf.start();
    const kpi = await wf.addKpi({ id: 'throughput', name: 'throughput', target: 1 });

    /** Completions the hub acknowledged, per work order: never more than one. */
    const accepted = new Map<string, number>();
    const refused = new Map<string, string>();
    for (let i = 0; i < 3; i++) {
      const worker = await agent(hub, { agentId: `crash-agent-${i}`, agentType: 'w', maxConcurrentTasks: 4, requestTimeoutMs: 3000 });
      worker.on('report', (report) => {
        if (report.outcome !== 'completed') return;
        if (report.accepted) accepted.set(report.workOrderId, (accepted.get(report.workOrderId) ?? 0) + 1);
        else refused.set(report.workOrderId, report.code ?? '');
      });
      await worker.onTask('job', async (_task, ctx) => {
        await ctx.progress(50);
        return { result: 'ok' };
      });
    }

    const ackedOrders = new Set<string>();
    let ackedSamples = 0;
    let running = true;
    let next = 0;
    const load = (async () => {
      while (running) {
        const id = `wo-${next++}`;
        try {
          await wf.createWorkOrder({ id, taskType: 'job', timeouts: { leaseMs: 60_000 } });
          ackedOrders.add(id);
          await wf.recordKpi(kpi.id, next);
          ackedSamples++;
        } catch (error) {
          // Not acknowledged (the hub died mid-request): it may or may not have happened.
          if (!(error instanceof HubError)) throw error;
        }
      }
    })();

    for (let kill = 0; kill < KILLS; kill++) {
      // Fault injection at a random moment under load (not synchronisation).
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 400));
      await hub.crash();
      await hub.start();
      // What was acknowledged before the read is asked for: a big workflow is read at the version
      // of the request, and changes acknowledged while it is serialised come after it.
      const acked = [...ackedOrders];
      const samples = ackedSamples;
      const state = await wf.get();
      const missing = acked.filter((id) => !state.workOrders[id]);
      expect(missing, `after kill ${kill + 1}`).toEqual([]);
      expect(state.kpis.throughput!.samples, `after kill ${kill + 1}`).toBeGreaterThanOrEqual(samples);
    }
    running = false;
    await load;

    // Let the agents finish what remains (watched live), then check each order completed exactly once.
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<Workflow>(wf.id);
    const state = await mirror.until((w) => Object.values(w.workOrders).every((o) => o.state === 'completed'), { what: 'all orders completed', timeoutMs: 60_000 }).catch(
      async (error) => {
        const stuck = Object.values((await wf.get()).workOrders).filter((o) => o.state !== 'completed');
        console.log(JSON.stringify(stuck.slice(0, 3), null, 1), JSON.stringify(await client.listAgents(), null, 1).slice(0, 3000));
        throw error;
      },
    );
    const orders = Object.values(state.workOrders);
    expect(orders.length).toBeGreaterThanOrEqual(ackedOrders.size);
    expect(orders.filter((o) => o.state !== 'completed').map((o) => `${o.id}:${o.state}`)).toEqual([]);
    for (const order of orders) expect(order.history.filter((h) => h.outcome === 'completed'), order.id).toHaveLength(1);
    expect([...accepted.values()].every((n) => n === 1)).toBe(true);
    // A completion can commit just before a kill and lose its ack; the agent's retry is then refused
    // as STALE_ATTEMPT. So acknowledged completions are at most, never more than, the completions.
    expect(accepted.size).toBeLessThanOrEqual(orders.length);
    console.log(`crash test: ${KILLS} kills, ${ackedOrders.size} acknowledged orders, ${ackedSamples} KPI samples, ${refused.size} late reports refused`);

    client.close();
    watcher.close();
    expect(await hub.stop()).toBe(0);
    // Every file the hub left behind is readable.
    const recovered = await recover(dataDir);
    expect(recovered.docs.has('crash-wf')).toBe(true);
    expect(() => JSON.parse(readFileSync(join(dataDir, 'snapshot.json'), 'utf8'))).not.toThrow();
  }, 240_000);
});
