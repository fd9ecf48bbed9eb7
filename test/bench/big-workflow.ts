import { merged } from './baseline.ts';
import { Histogram } from './histogram.ts';
import { measureCpu, startGenerator, stopAll, type BenchContext } from './launch.ts';
import type { BenchChild } from './processes.ts';
import { ProgressRig, type OpenRun } from './progress.ts';
import { check, type ScenarioResult } from './report.ts';
import type { BigReads } from './roles/big-readers.ts';

/** One measured phase: the agents' progress run, the readers' figures when there were readers, and the processes' usage. */
interface Phase {
  open: OpenRun;
  reads: BigReads | undefined;
  cpu: Record<string, number>;
  loopDelay: { p50: number; p99: number; max: number };
}

/**
 * Scenario: a big workflow. One workflow of 100,000 work orders, 100 of them running on agents
 * that send progress (acked) at a steady rate. Phases alternate without readers and with them:
 * monitors subscribing to the whole workflow and to its summary view, and reports in every
 * format fetched over the socket and over HTTP. What matters is that the readers do not stall
 * the hub: its event loop, and the agents' acks compared with the phases without readers.
 */
export async function runBigWorkflow(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const s = ctx.scale.bigWorkflow;
  ctx.log(`big workflow: ${s.orders} orders, ${s.agents} of them running`);
  const rig = await ProgressRig.start(ctx, 'big-workflow', s.agents);
  let readers: BenchChild | undefined;
  try {
    const filled = await rig.hub.request<{ ms: number }>('fill', { workflowId: rig.workflowId, orders: s.orders - s.agents, taskType: 'bench.idle' });
    ctx.log(`big workflow: filled in ${Math.round(filled.ms)} ms`);
    readers = await startGenerator('readers');
    await readers.request('readers.connect', { url: rig.url, wholeDoc: s.wholeDoc, summaryViews: s.summaryViews });
    const phase = async (name: string, withReaders: boolean, durationMs: number): Promise<Phase> => {
      ctx.log(`big workflow: ${name} (${withReaders ? 'with' : 'without'} readers)`);
      const cpu = await measureCpu({ hub: rig.hub, agents: rig.agents, readers: readers! });
      if (withReaders) await readers!.request('readers.start', { url: rig.url, workflowId: rig.workflowId, waveMs: s.waveMs });
      const open = await rig.progress(name, s.rate, durationMs, s.warmupMs);
      const reads = withReaders ? await readers!.request<BigReads>('readers.stop') : undefined;
      const usage = await cpu.end();
      return { open, reads, cpu: usage, loopDelay: cpu.loopDelay.hub! };
    };
    // Once with readers, not counted: the report worker starts and the hub's read paths warm up.
    await phase('prime', true, s.phaseMs / 2);
    const quiet: Phase[] = [];
    const busy: Phase[] = [];
    for (let r = 0; r < s.rounds; r++) {
      quiet.push(await phase(`quiet${r}`, false, s.phaseMs));
      busy.push(await phase(`busy${r}`, true, s.phaseMs));
    }
    const ack = (phases: Phase[]) => merged(phases.map((p) => p.open.latency)).summary();
    const quietAck = ack(quiet);
    const busyAck = ack(busy);
    const loopMax = (phases: Phase[]) => Math.max(...phases.map((p) => p.loopDelay.max));
    const reads = busy.map((p) => p.reads!);
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
    const wholeBytes = mean(reads.map((r) => r.wholeDocBytes));
    const summaryBytes = mean(reads.map((r) => r.summaryViewBytes));
    const wholeMs = merged(reads.map((r) => r.wholeDocMs)).summary();
    const reportMs = merged(reads.map((r) => r.reports.ms)).summary();
    const readErrors = reads.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0), 0);
    const refused = [...quiet, ...busy].reduce((n, p) => n + p.open.unanswered + Object.values(p.open.errors).reduce((a, b) => a + b, 0), 0);
    const cpu = (phases: Phase[], name: string) => mean(phases.map((p) => p.cpu[name] ?? 0));
    return {
      name: 'big-workflow',
      title: '8. A big workflow and its readers',
      checks: [
        check('hub event-loop delay max with readers (baseline: without)', 'ms', loopMax(busy), loopMax(quiet), { max: 50, text: '≤ 50 ms' }),
        check(`progress ack p99 at ${s.rate}/s with readers (baseline: without)`, 'ms', busyAck.p99, quietAck.p99, { ratioMax: 2, text: '≤ 2 × without readers' }),
        check(`progress ack p50 at ${s.rate}/s with readers (baseline: without)`, 'ms', busyAck.p50, quietAck.p50),
        check('summary-view subscription (baseline: whole workflow)', 'bytes', summaryBytes, wholeBytes, { ratioMax: 0.001, text: '≤ 0.1 % of whole' }),
        check('whole-workflow subscription, ack and transfer, p50', 'ms', wholeMs.p50),
        check('whole-workflow subscription, ack and transfer, max', 'ms', wholeMs.max),
        check('report, rendered and read, p50 (all formats, socket and HTTP)', 'ms', reportMs.p50),
        check('reports read with readers (socket + HTTP)', '', reads.reduce((n, r) => n + r.reports.socket + r.reports.http, 0)),
        check('requests refused or unanswered (progress and reads)', '', refused + readErrors, null, { max: 0, text: '0' }),
        check('hub CPU with readers (baseline: without)', '%', cpu(busy, 'hub'), cpu(quiet, 'hub')),
        check('readers process CPU', '%', cpu(busy, 'readers')),
      ],
      details: {
        quiet: quiet.map((p) => ({ latency: Histogram.fromJSON(p.open.latency).summary(), loopDelay: p.loopDelay, cpu: p.cpu, errors: p.open.errors, unanswered: p.open.unanswered })),
        busy: busy.map((p) => ({
          latency: Histogram.fromJSON(p.open.latency).summary(),
          loopDelay: p.loopDelay,
          cpu: p.cpu,
          errors: p.open.errors,
          unanswered: p.open.unanswered,
          reads: { ...p.reads!, wholeDocMs: Histogram.fromJSON(p.reads!.wholeDocMs).summary(), reports: { ...p.reads!.reports, ms: Histogram.fromJSON(p.reads!.reports.ms).summary() } },
        })),
        fillMs: Math.round(filled.ms),
      },
      notes: [
        `One workflow of ${s.orders} work orders; ${s.agents} of them run on bare-socket agents sending progress at ${s.rate}/s, acked once journaled. ${s.rounds} phases of ${s.phaseMs / 1000} s without readers alternate with as many with them.`,
        `With readers: ${s.wholeDoc} monitors subscribe to the whole workflow (reading its snapshot, a transfer of 1 MB parts) and ${s.summaryViews} to its summary view, every ${s.waveMs / 1000} s; one reader over the socket and one over HTTP fetch reports one after another, JSON, Markdown and HTML in turn. The readers run in their own process and never parse what they read.`,
      ],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(readers);
    await rig.stop();
  }
}
