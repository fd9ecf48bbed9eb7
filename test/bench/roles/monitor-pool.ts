import type { Socket } from 'socket.io-client';
import { Histogram } from '../histogram.ts';
import { epochMs } from '../open-loop.ts';
import { BENCH_TOKENS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';

interface PatchMessage {
  doc: string;
  from: number;
  to: number;
  ops: Array<{ op: string; path: string; value?: unknown }>;
}

/** The schedule of the progress run being watched: request i was due at start + i × 1000 / rate. */
interface Armed {
  run: string;
  startEpochMs: number;
  rate: number;
  agents: number;
  /** Requests in the run, warm-up included. */
  total: number;
  /** Requests before this index are the warm-up: not counted. */
  firstIndex: number;
}

/**
 * Subscribers as bare sockets on `/monitor`. Each follows one workflow and measures staleness:
 * for every progress request of the armed run, the time from its intended send time until a
 * patch carrying it (or a later request of the same agent, which supersedes it) arrives.
 */
export class MonitorPool {
  private sockets: Socket[] = [];
  private armed: Armed | undefined;
  private staleness = new Histogram();
  private patches = 0;
  private resyncs = 0;
  /** Per subscriber, per work order: the highest request index seen. */
  private seen: Array<Map<string, number>> = [];

  async connect(options: { url: string; count: number; doc: string }): Promise<{ subscribers: number }> {
    this.sockets = await openSockets(options.url, '/monitor', BENCH_TOKENS.monitor, options.count);
    this.seen = this.sockets.map(() => new Map());
    await Promise.all(
      this.sockets.map(async (socket, i) => {
        socket.on('patch', (message: PatchMessage) => this.onPatch(i, message));
        socket.on('resync', () => this.resyncs++);
        const reply = await ask(socket, 'subscribe', { doc: options.doc });
        if (!reply.ok) throw new Error(`subscribe refused: ${reply.error.code} ${reply.error.message}`);
      }),
    );
    return { subscribers: this.sockets.length };
  }

  /** Starts measuring the progress run `run`. */
  arm(armed: Armed): void {
    this.armed = armed;
    this.staleness = new Histogram();
    this.patches = 0;
    this.resyncs = 0;
    for (const map of this.seen) map.clear();
  }

  /** Stops measuring and returns what was seen. */
  collect() {
    const expected = ((this.armed?.total ?? 0) - (this.armed?.firstIndex ?? 0)) * this.sockets.length;
    this.armed = undefined;
    return { staleness: this.staleness.toJSON(), patches: this.patches, resyncs: this.resyncs, unseen: expected - this.staleness.count };
  }

  private onPatch(subscriber: number, message: PatchMessage): void {
    const armed = this.armed;
    if (!armed) return;
    const now = epochMs();
    this.patches++;
    const prefix = `${armed.run}:`;
    const seen = this.seen[subscriber]!;
    for (const op of message.ops) {
      if (typeof op.value !== 'string' || !op.path.endsWith('/message') || !op.value.startsWith(prefix)) continue;
      const index = Number(op.value.slice(prefix.length));
      const previous = seen.get(op.path);
      if (previous !== undefined && index <= previous) continue;
      // Requests of one agent are index, index - n, index - 2n, …: every one up to this is now visible.
      for (let k = previous === undefined ? index % armed.agents : previous + armed.agents; k <= index; k += armed.agents) {
        if (k >= armed.firstIndex) this.staleness.recordMs(now - (armed.startEpochMs + (k * 1000) / armed.rate));
      }
      seen.set(op.path, index);
    }
  }

  close(): void {
    for (const socket of this.sockets) socket.disconnect();
    this.sockets = [];
  }
}
