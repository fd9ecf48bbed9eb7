/**
 * How long the first view of a big workflow holds the hub's event loop, and how long it takes to
 * be answered. One process: a hub with one workflow of N work orders (two task types), a monitor
 * subscribing to its summary view (the first view: the catalog is built for it), then to an
 * orders view (the catalog is built by then), while a control client keeps sending progress
 * updates whose acks are timed. The loop is watched by a setImmediate chain (the longest gap
 * between two turns) and by monitorEventLoopDelay.
 *
 *   npx tsx test/bench/first-view.mts [orders=100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { connectControl, connectMonitor, type ViewSpec } from '../../client-sdk/index.ts';
import { createHub } from '../../server/index.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { addOrders } from './workload.ts';

const ORDERS = Number(process.argv[2] ?? 100_000);
const TOKEN = 'first-view-admin';
const ADMIN = { role: 'admin' as const, name: 'first-view' };

const dataDir = mkdtempSync(join(tmpdir(), 'first-view-'));
const hub = await createHub({ port: 0, dataDir, logLevel: 'silent', tokens: [{ token: TOKEN, role: 'admin', name: 'bench' }], snapshotAfterBytes: 2 ** 40 });
try {
  const { workflow } = await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ userQuery: 'first view' }), actor: ADMIN });
  await addOrders(hub, workflow.id, ORDERS / 2, { batch: 1000, taskType: 'parse', label: 'fill' });
  await addOrders(hub, workflow.id, ORDERS / 2, { batch: 1000, taskType: 'embed', label: 'fill' });
  await hub.settle();
  const monitor = await connectMonitor({ url: hub.url, token: TOKEN });
  const control = await connectControl({ url: hub.url, token: TOKEN });
  const handle = control.workflow(workflow.id);

  /** Subscribes to a view while the loop is watched and a writer keeps acking; returns the figures. */
  const measure = async (view: ViewSpec) => {
    let last = performance.now();
    let longestGap = 0;
    let watching = true;
    const turn = () => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      if (watching) setImmediate(turn);
    };
    setImmediate(turn);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const acks: number[] = [];
    const writer = (async () => {
      for (let i = 0; watching; i++) {
        const sent = performance.now();
        await handle.updateProgress('bench', i % 100);
        acks.push(performance.now() - sent);
      }
    })();
    const started = performance.now();
    const mirror = await monitor.subscribe(workflow.id, { view });
    const answeredMs = performance.now() - started;
    watching = false;
    await writer;
    delay.disable();
    return {
      view: mirror.doc,
      answeredMs: +answeredMs.toFixed(1),
      longestTurnGapMs: +longestGap.toFixed(1),
      loopDelayMaxMs: +(delay.max / 1e6).toFixed(1),
      writesAcked: acks.length,
      ackMaxMs: +Math.max(0, ...acks).toFixed(1),
    };
  };

  // A warm-up of the paths (a small view of another workflow) so the first figures are not compiling.
  const warm = await hub.dispatch({ type: 'workflow.create', input: CreateWorkflowInput.parse({ userQuery: 'warm' }), actor: ADMIN });
  await addOrders(hub, warm.workflow.id, 100, { batch: 100, taskType: 'parse', label: 'warm' });
  await monitor.subscribe(warm.workflow.id, { view: { kind: 'summary' } });
  await new Promise((resolve) => setTimeout(resolve, 200));

  console.log(`${ORDERS} orders`);
  console.log(await measure({ kind: 'summary' }));
  console.log(await measure({ kind: 'orders', limit: 50 }));
  await monitor.close();
  await control.close();
} finally {
  await hub.close();
  rmSync(dataDir, { recursive: true, force: true });
}
