/**
 * How long archiving a big workflow, and reading it back from the archive, hold the hub's event
 * loop: a tool for issue 22, not part of `npm run bench`. Builds a hub (embedded store, fsync off)
 * with one cancelled workflow of N work orders (default 100,000, about 60 MB of JSON), moves its
 * clock past keepFinishedMs, and reports the loop while the archiver writes it and evicts it, then
 * while a first read (`workOrder.get`) loads it back from the archive.
 *
 * Run: npx tsx test/bench/archive-loop.mts [orders]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { connectControl } from '../../client-sdk/index.ts';
import { createHub } from '../../server/index.ts';

const ORDERS = Number(process.argv[2] ?? 100_000);
const KEEP = 60_000;
const TOKEN = 'archive-loop-admin';

/**
 * Runs `work` while watching the loop: the longest gap between two turns, the delay histogram, and
 * the longest garbage collection (a pause the loop sees too, whoever allocated).
 */
async function watched<T>(what: string, work: () => Promise<T>): Promise<T> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let longestGc = 0;
  const collections = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) longestGc = Math.max(longestGc, entry.duration);
  });
  collections.observe({ entryTypes: ['gc'] });
  let longest = 0;
  let turns = 0;
  let last = performance.now();
  let watching = true;
  const turn = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    turns++;
    if (watching) setImmediate(turn);
  };
  setImmediate(turn);
  const started = performance.now();
  const result = await work();
  watching = false;
  delay.disable();
  collections.disconnect();
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  console.log(
    `${what}: ${(performance.now() - started).toFixed(0)} ms in ${turns} turns; longest turn ${longest.toFixed(1)} ms; ` +
      `loop delay max ${ms(delay.max)} ms, p99 ${ms(delay.percentile(99))} ms; longest GC ${longestGc.toFixed(1)} ms`,
  );
  return result;
}

const dataDir = mkdtempSync(join(tmpdir(), 'archive-loop-'));
const clock = { now: Date.now() };
const hub = await createHub(
  { port: 0, dataDir, tokens: [{ token: TOKEN, role: 'admin', name: 'archive-loop' }], logLevel: 'silent', keepFinishedMs: KEEP, sweepIntervalMs: 10, snapshotAfterBytes: 2 ** 40 },
  { clock: () => clock.now },
);
const client = await connectControl({ url: hub.url, token: TOKEN });
try {
  const wf = await client.createWorkflow({ userQuery: `${ORDERS} orders to archive` });
  await wf.start();
  for (let first = 0; first < ORDERS; first += 1000) {
    const count = Math.min(1000, ORDERS - first);
    await wf.createWorkOrders(Array.from({ length: count }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this', input: { n: first + i } })));
  }
  await wf.cancel('to be archived');
  console.log(`${ORDERS} work orders, ${(JSON.stringify(hub.state.workflows.get(wf.id)).length / 1e6).toFixed(1)} MB of JSON`);

  // For comparison: the same hub doing nothing but its sweep, before archiving starts.
  await watched('idle, for comparison (500 ms)', () => new Promise((resolve) => setTimeout(resolve, 500)));
  await watched('archive (write, then evict)', async () => {
    clock.now += KEEP + 1;
    while (hub.state.workflows.has(wf.id)) await new Promise((resolve) => setTimeout(resolve, 5));
  });
  console.log(`archived file: ${(statSync(join(dataDir, 'archive', `${wf.id}.json`)).size / 1e6).toFixed(1)} MB`);
  const order = await watched('first read from the archive (workOrder.get)', () => wf.getWorkOrder('o0'));
  if (order.id !== 'o0') throw new Error('read back the wrong work order');
} finally {
  await client.close();
  await hub.close();
  rmSync(dataDir, { recursive: true, force: true });
}
