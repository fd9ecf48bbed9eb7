import type { Socket } from 'socket.io-client';
import { Histogram, type HistogramData } from '../histogram.ts';
import { BENCH_TOKENS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';
import { patchTextParser } from './monitor-pool.ts';

/** What the readers of a big workflow did over one phase. */
export interface BigReads {
  /** Bytes of one whole-document subscription (its reply and its transfer), and how many there were. */
  wholeDocBytes: number;
  wholeDocSubscriptions: number;
  /** Bytes of one summary-view subscription reply, and how many there were. */
  summaryViewBytes: number;
  summaryViewSubscriptions: number;
  /** Time to a whole document in hand: the subscribe ack and every part read. */
  wholeDocMs: HistogramData;
  reports: { socket: number; http: number; bytes: number; ms: HistogramData };
  errors: Record<string, number>;
}

type Reply = Awaited<ReturnType<typeof ask>>;
interface Transfer {
  id: string;
  parts: number;
  bytes: number;
}

const FORMATS = [
  ['json', 'json'],
  ['markdown', 'md'],
  ['html', 'html'],
] as const;

/** Reads every part of a transfer; returns the bytes read. */
async function readTransfer(socket: Socket, transfer: Transfer): Promise<number> {
  let bytes = 0;
  for (let part = 0; part < transfer.parts; part++) {
    const reply = await ask(socket, 'transfer.read', { id: transfer.id, part });
    if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
    bytes += (reply.data as { data: Uint8Array }).data.byteLength;
  }
  return bytes;
}

/**
 * The readers of the big-workflow scenario, as bare sockets that never parse what they get:
 * monitors subscribing to the whole workflow (reading its transfer) or to its summary view, in
 * waves, and one reader over the socket and one over HTTP fetching reports in turn (JSON,
 * Markdown, HTML), one at a time each, until stopped.
 */
export class BigReaders {
  private wholeDoc: Socket[] = [];
  private summary: Socket[] = [];
  private reporter: Socket | undefined;
  private stopped = false;
  private loops: Array<Promise<void>> = [];
  private readonly stats = { wholeDocBytes: 0, wholeDocSubscriptions: 0, summaryViewBytes: 0, summaryViewSubscriptions: 0, reportsSocket: 0, reportsHttp: 0, reportBytes: 0 };
  private wholeDocMs = new Histogram();
  private reportMs = new Histogram();
  private errors: Record<string, number> = {};

  /** Opens the connections: `wholeDoc` and `summaryViews` monitors, and one for reports. */
  async connect(options: { url: string; wholeDoc: number; summaryViews: number }): Promise<void> {
    // Patches of the whole document are handed over as text, as the fan-out's subscribers do.
    this.wholeDoc = await openSockets(options.url, '/monitor', BENCH_TOKENS.monitor, options.wholeDoc, { parser: patchTextParser });
    this.summary = await openSockets(options.url, '/monitor', BENCH_TOKENS.monitor, options.summaryViews);
    [this.reporter] = await openSockets(options.url, '/monitor', BENCH_TOKENS.monitor, 1);
  }

  /**
   * Starts a phase: every monitor subscribes now and again every `waveMs`, and the report readers
   * loop, until `stop()`.
   */
  start(options: { url: string; workflowId: string; waveMs: number }): void {
    this.stopped = false;
    this.wholeDocMs = new Histogram();
    this.reportMs = new Histogram();
    this.errors = {};
    for (const key of Object.keys(this.stats) as Array<keyof typeof this.stats>) this.stats[key] = 0;
    const { workflowId } = options;
    const waves = async () => {
      while (!this.stopped) {
        const next = performance.now() + options.waveMs;
        await Promise.all([...this.wholeDoc.map((s) => this.subscribeWhole(s, workflowId)), ...this.summary.map((s) => this.subscribeSummary(s, workflowId))]);
        const wait = next - performance.now();
        if (wait > 0 && !this.stopped) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    };
    this.loops = [waves(), this.reportsOverSocket(workflowId), this.reportsOverHttp(options.url, workflowId)];
  }

  /** Ends the phase once the reads under way finish; returns what was read. */
  async stop(): Promise<BigReads> {
    this.stopped = true;
    await Promise.all(this.loops);
    const count = (n: number) => Math.max(1, n);
    return {
      wholeDocBytes: Math.round(this.stats.wholeDocBytes / count(this.stats.wholeDocSubscriptions)),
      wholeDocSubscriptions: this.stats.wholeDocSubscriptions,
      summaryViewBytes: Math.round(this.stats.summaryViewBytes / count(this.stats.summaryViewSubscriptions)),
      summaryViewSubscriptions: this.stats.summaryViewSubscriptions,
      wholeDocMs: this.wholeDocMs.toJSON(),
      reports: { socket: this.stats.reportsSocket, http: this.stats.reportsHttp, bytes: this.stats.reportBytes, ms: this.reportMs.toJSON() },
      errors: this.errors,
    };
  }

  /** Disconnects every socket. */
  close(): void {
    for (const socket of [...this.wholeDoc, ...this.summary, ...(this.reporter ? [this.reporter] : [])]) socket.disconnect();
    this.wholeDoc = [];
    this.summary = [];
    this.reporter = undefined;
  }

  private failed(what: string, reply: Reply | Error): void {
    const code = reply instanceof Error ? reply.message.slice(0, 60) : reply.ok ? 'unexpected' : reply.error.code;
    const key = `${what}: ${code}`;
    this.errors[key] = (this.errors[key] ?? 0) + 1;
  }

  private async subscribeWhole(socket: Socket, workflowId: string): Promise<void> {
    const started = performance.now();
    try {
      const reply = await ask(socket, 'subscribe', { doc: workflowId });
      if (!reply.ok) return this.failed('subscribe', reply);
      const data = reply.data as { transfer?: Transfer };
      let bytes = Buffer.byteLength(JSON.stringify(data));
      if (data.transfer) bytes += await readTransfer(socket, data.transfer);
      this.wholeDocMs.recordMs(performance.now() - started);
      this.stats.wholeDocBytes += bytes;
      // It follows the document from now on (its patches arrive as text and are dropped); the next wave subscribes again.
      this.stats.wholeDocSubscriptions++;
    } catch (error) {
      this.failed('subscribe', error as Error);
    }
  }

  private async subscribeSummary(socket: Socket, workflowId: string): Promise<void> {
    const reply = await ask(socket, 'subscribe', { doc: workflowId, view: { kind: 'summary' } });
    if (!reply.ok) return this.failed('summary view', reply);
    this.stats.summaryViewBytes += Buffer.byteLength(JSON.stringify(reply.data));
    this.stats.summaryViewSubscriptions++;
  }

  private async reportsOverSocket(workflowId: string): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const started = performance.now();
      try {
        const reply = await ask(this.reporter!, 'report', { workflowId, format: FORMATS[i % 3]![0] });
        if (!reply.ok) {
          this.failed('report', reply);
          continue;
        }
        const data = reply.data as { body?: string; transfer?: Transfer };
        this.stats.reportBytes += data.transfer ? await readTransfer(this.reporter!, data.transfer) : Buffer.byteLength(data.body ?? '');
        this.stats.reportsSocket++;
        this.reportMs.recordMs(performance.now() - started);
      } catch (error) {
        this.failed('report', error as Error);
      }
    }
  }

  private async reportsOverHttp(url: string, workflowId: string): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      const started = performance.now();
      try {
        const response = await fetch(`${url}/api/workflows/${workflowId}/report.${FORMATS[(i + 1) % 3]![1]}`, { headers: { authorization: `Bearer ${BENCH_TOKENS.monitor}` } });
        const body = await response.arrayBuffer();
        if (!response.ok) {
          this.failed('http report', new Error(String(response.status)));
          continue;
        }
        this.stats.reportBytes += body.byteLength;
        this.stats.reportsHttp++;
        this.reportMs.recordMs(performance.now() - started);
      } catch (error) {
        this.failed('http report', error as Error);
      }
    }
  }
}
