/**
 * The hub under test, in its own process: `createHub` with the options in the JSON file named by
 * the first argument, driven by the bench runner over IPC (CPU, heap after GC, preloading work
 * orders or a history of finished workflows through StateWriter.dispatch, clean exit). Started by BenchChild.start('hub', './hub-entry.ts').
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createHub, tuneV8ForHub, type HubOptionsInput } from '../../server/index.ts';
import { serveParent } from './processes.ts';
import { addOrders, preloadWorkOrders, produceWorkflows } from './workload.ts';

const options = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as HubOptionsInput;
const before = performance.now();
const hub = await createHub(options);
const listeningAt = performance.now();
// As `switchboard start` does: the measured hub is the one people run.
tuneV8ForHub();

const gc = (globalThis as { gc?: () => void }).gc;

serveParent(
  {
    /** Heap after `collections` full collections, 3 unless told (needs --expose-gc). */
    gc: (request) => {
      if (!gc) throw new Error('start the hub with --expose-gc');
      for (let i = 0; i < Number(request.collections ?? 3); i++) gc();
      return process.memoryUsage();
    },
    /** Creates a started workflow holding `orders` queued work orders, `batch` per command. */
    preload: async (request) => {
      const started = performance.now();
      const workflowId = await preloadWorkOrders(hub, { orders: Number(request.orders), batch: Number(request.batch ?? 1000), taskType: String(request.taskType ?? 'bench.idle') });
      await hub.settle();
      return { workflowId, ms: performance.now() - started };
    },
    /** Adds `orders` work orders of `taskType` to an existing workflow, 1,000 per command. */
    fill: async (request) => {
      const started = performance.now();
      await addOrders(hub, String(request.workflowId), Number(request.orders), { batch: 1000, taskType: String(request.taskType), label: 'fill' });
      await hub.settle();
      return { ms: performance.now() - started };
    },
    /** Workflows of work orders, finished (cancelled) or left open (workload.ts, produceWorkflows). */
    workflows: async (request) => {
      const started = performance.now();
      const ids = await produceWorkflows(hub, { finished: Number(request.finished ?? 0), open: Number(request.open ?? 0), ordersPerWorkflow: Number(request.ordersPerWorkflow), taskType: 'bench.idle' });
      await hub.settle();
      return { ...ids, ms: performance.now() - started };
    },
    /** How many workflows, and work orders in them, the hub holds in memory. */
    census: () => {
      let workOrders = 0;
      for (const workflow of hub.state.workflows.values()) for (const count of Object.values(workflow.workOrderCounts)) workOrders += count;
      return { workflows: hub.state.workflows.size, workOrders };
    },
  },
  {
    url: hub.url,
    /** From process start (node and tsx loading included) to listening. */
    processToListeningMs: listeningAt,
    /** createHub alone: options, store recovery, state rebuild, listening. */
    createHubMs: listeningAt - before,
  },
  () => hub.close(),
);
