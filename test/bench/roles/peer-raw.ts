import { io, type Socket } from 'socket.io-client';
import type { Handler, Job, PeerQueue, PeerSide, Workers } from './peer-load.ts';

/**
 * The floor under the hub for the awaited-progress workload: the same `task.progress` requests,
 * one at a time, to the bench's bare socket.io server (raw-server.ts), which acks each with an
 * envelope and does nothing else. It has no queue: a job added is run at once by the one worker.
 */
export class RawPeer implements PeerSide {
  constructor(private readonly url: string) {}

  async open(kind: string): Promise<PeerQueue> {
    return new RawQueue(this.url, kind);
  }

  async close(): Promise<void> {}
}

class RawQueue implements PeerQueue {
  private worker: ((job: Job) => void) | undefined;

  constructor(
    private readonly url: string,
    private readonly kind: string,
  ) {}

  addBulk(): Promise<void> {
    return Promise.reject(new Error('the bare socket.io server has no queue: only the awaited-progress workload runs against it'));
  }

  async add(job: Job): Promise<void> {
    if (!this.worker) throw new Error('no worker to run the job');
    this.worker(job);
  }

  async workers(count: number, _concurrency: number, handler: Handler, completed: (job: Job) => void): Promise<Workers> {
    if (count !== 1) throw new Error('the bare socket.io side runs one worker');
    const socket: Socket = io(`${this.url}/agent`, { transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    const failures: string[] = [];
    const ref = { workflowId: 'wf_AAAAAAAAAAAA', workOrderId: `wo_${this.kind}`, attemptToken: 'att_AAAAAAAAAAAA' };
    const progress = async (percentage: number, message?: string) => {
      const reply = (await socket.emitWithAck('task.progress', { ...ref, progress: percentage, message })) as { ok: boolean };
      if (!reply.ok) throw new Error('the bare server refused an update');
    };
    this.worker = (job) =>
      void handler(job, progress).then(
        () => completed(job),
        (error: Error) => failures.push(error.message),
      );
    return { failures, run: async () => undefined, close: async () => void socket.disconnect() };
  }

  async close(): Promise<void> {}
}
