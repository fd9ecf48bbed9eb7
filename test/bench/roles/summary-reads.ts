import { Histogram, type HistogramData } from '../histogram.ts';
import { epochMs, runOpenLoop } from '../open-loop.ts';
import { BENCH_TOKENS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';

/** Latency of workflow.summary, by the kind of workflow read, and the refusals. */
export interface SummaryReads {
  archived: HistogramData;
  inMemory: HistogramData;
  errors: Record<string, number>;
  unanswered: number;
}

/**
 * workflow.summary over /control in an open loop at `rate`: even requests read one of `archivedIds`
 * at random (a fixed seed, so every run reads the same ones), odd ones `inMemoryId`. Latency is
 * from the intended send time; the first `warmupMs` are not counted.
 */
export async function readSummaries(options: { url: string; archivedIds: string[]; inMemoryId: string; rate: number; durationMs: number; warmupMs: number }): Promise<SummaryReads> {
  const [control] = await openSockets(options.url, '/control', BENCH_TOKENS.admin, 1);
  const histograms = { archived: new Histogram(), inMemory: new Histogram() };
  const warmup = Math.round((options.rate * options.warmupMs) / 1000);
  let seed = 21;
  // The high bits of a linear congruential generator: its low bits repeat after a few draws.
  const pick = () => options.archivedIds[((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % options.archivedIds.length]!;
  try {
    const open = await runOpenLoop({
      rate: options.rate,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      send: (i, intended, done) => {
        const kind = i % 2 === 0 ? 'archived' : 'inMemory';
        void ask(control!, 'workflow.summary', { workflowId: kind === 'archived' ? pick() : options.inMemoryId }).then((reply) => {
          if (i >= warmup) histograms[kind].recordMs(epochMs() - intended);
          done(reply.ok ? undefined : reply.error.code);
        });
      },
    });
    return { archived: histograms.archived.toJSON(), inMemory: histograms.inMemory.toJSON(), errors: open.errors, unanswered: open.unanswered };
  } finally {
    control!.disconnect();
  }
}
