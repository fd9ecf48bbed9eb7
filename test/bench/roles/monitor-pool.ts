import type { Socket } from 'socket.io-client';
import { Decoder, Encoder, PacketType } from 'socket.io-parser';
import { Histogram } from '../histogram.ts';
import { epochMs } from '../open-loop.ts';
import { BENCH_TOKENS } from '../workload.ts';
import { ask, openSockets } from './agent-pool.ts';

/**
 * socket.io's parser, except that a broadcast patch is handed over as the frame's text instead of
 * being parsed: 100 subscribers in one process each parsing ~2 MB/s of patches and walking every
 * op needed more CPU than this process gets beside the hub and the agents on two cores. The hub
 * sends exactly the same frames; only the bench's side of reading them is cheaper.
 */
const PATCH_FRAME = '2/monitor,["patch",';
class PatchTextDecoder extends Decoder {
  override add(chunk: unknown): void {
    if (typeof chunk === 'string' && chunk.startsWith(PATCH_FRAME)) this.emitReserved('decoded', { type: PacketType.EVENT, nsp: '/monitor', data: ['patch', chunk] });
    else super.add(chunk);
  }
}
export const patchTextParser = { Encoder, Decoder: PatchTextDecoder };

/**
 * Calls `visit` with the request index of every progress message of run `run` in a patch frame.
 * The hub writes each op as {"op":…,"path":…,"value":…} and the bench's messages are
 * "<run>:<index>". Plain indexOf scans and digits read in place: 100 subscribers see a million
 * messages a second between them, and a regex, or a string sliced out per message (for the path,
 * for the number), was itself most of this process's CPU.
 */
export function scanProgress(frame: string, run: string, visit: (index: number) => void): void {
  const needle = `/message","value":"${run}:`;
  for (let at = frame.indexOf(needle); at !== -1; at = frame.indexOf(needle, at + needle.length)) {
    let index = 0;
    for (let i = at + needle.length, digit = frame.charCodeAt(i) - 48; digit >= 0 && digit <= 9; digit = frame.charCodeAt(++i) - 48) index = index * 10 + digit;
    visit(index);
  }
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
  /** Keep when each request became visible to each subscriber, for staleness from its ack (collect). */
  keepArrivals?: boolean;
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
  /** Per subscriber, per agent (request i is agent i mod agents): the highest request index seen, -1 for none. */
  private seen: Float64Array[] = [];
  /** With `keepArrivals`: per subscriber, per request index, when a patch showing it arrived (epoch ms), NaN before. */
  private arrivals: Float64Array[] | undefined;

  async connect(options: { url: string; count: number; doc: string }): Promise<{ subscribers: number }> {
    this.sockets = await openSockets(options.url, '/monitor', BENCH_TOKENS.monitor, options.count, { parser: patchTextParser });
    await Promise.all(
      this.sockets.map(async (socket, i) => {
        socket.on('patch', (frame: string) => this.onPatch(i, frame));
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
    this.seen = this.sockets.map(() => new Float64Array(armed.agents).fill(-1));
    this.arrivals = armed.keepArrivals ? this.sockets.map(() => new Float64Array(armed.total).fill(NaN)) : undefined;
  }

  /**
   * Stops measuring and returns what was seen. Given `acks` (AgentPool.progressOpen's, by request
   * index), also the staleness from each request's ack until a patch showing it arrived; a patch
   * that came before the ack (they travel apart) counts as 0 and in `beforeAck`.
   */
  collect(options: { acks?: Array<number | null> } = {}) {
    const armed = this.armed;
    const expected = ((armed?.total ?? 0) - (armed?.firstIndex ?? 0)) * this.sockets.length;
    this.armed = undefined;
    const seen = { staleness: this.staleness.toJSON(), patches: this.patches, resyncs: this.resyncs, unseen: expected - this.staleness.count };
    if (!armed || !options.acks || !this.arrivals) return seen;
    const sinceAck = new Histogram();
    let beforeAck = 0;
    for (const arrivals of this.arrivals) {
      for (let k = armed.firstIndex; k < armed.total; k++) {
        const ack = options.acks[k];
        const arrived = arrivals[k]!;
        if (typeof ack !== 'number' || Number.isNaN(arrived)) continue;
        if (arrived < ack) beforeAck++;
        sinceAck.recordMs(Math.max(0, arrived - ack));
      }
    }
    this.arrivals = undefined;
    return { ...seen, sinceAck: sinceAck.toJSON(), beforeAck };
  }

  private onPatch(subscriber: number, frame: string): void {
    const armed = this.armed;
    if (!armed) return;
    const now = epochMs();
    this.patches++;
    const seen = this.seen[subscriber]!;
    const arrivals = this.arrivals?.[subscriber];
    scanProgress(frame, armed.run, (index) => {
      const agent = index % armed.agents;
      const previous = seen[agent]!;
      if (index <= previous) return;
      // Requests of one agent are index, index - n, index - 2n, …: every one up to this is now visible.
      for (let k = previous < 0 ? agent : previous + armed.agents; k <= index; k += armed.agents) {
        if (k >= armed.firstIndex) this.staleness.recordMs(now - (armed.startEpochMs + (k * 1000) / armed.rate));
        if (arrivals) arrivals[k] = now;
      }
      seen[agent] = index;
    });
  }

  close(): void {
    for (const socket of this.sockets) socket.disconnect();
    this.sockets = [];
  }
}
