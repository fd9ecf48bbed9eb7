/**
 * The hub under test, in its own process: `createHub` with the options in the JSON file named by
 * the first argument, driven by the bench runner over IPC (CPU, heap after GC, preloading work
 * orders through StateWriter.dispatch, clean exit). Started by BenchChild.start('hub', './hub-entry.ts').
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createHub, tuneV8ForHub, type HubOptionsInput } from '../../server/index.ts';
import { serveParent } from './processes.ts';
import { preloadWorkOrders } from './workload.ts';

const options = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as HubOptionsInput;
const before = performance.now();
const hub = await createHub(options);
const listeningAt = performance.now();
// As `switchboard start` does: the measured hub is the one people run.
tuneV8ForHub();

const gc = (globalThis as { gc?: () => void }).gc;

serveParent(
  {
    /** Heap after a full collection (needs --expose-gc). */
    gc: () => {
      if (!gc) throw new Error('start the hub with --expose-gc');
      for (let i = 0; i < 3; i++) gc();
      return process.memoryUsage();
    },
    /** Creates a started workflow holding `orders` queued work orders, `batch` per command. */
    preload: async (request) => {
      const started = performance.now();
      const workflowId = await preloadWorkOrders(hub, { orders: Number(request.orders), batch: Number(request.batch ?? 1000), taskType: String(request.taskType ?? 'bench.idle') });
      await hub.settle();
      return { workflowId, ms: performance.now() - started };
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
