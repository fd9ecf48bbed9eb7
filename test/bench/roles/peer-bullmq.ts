import { Queue, Worker } from 'bullmq';
import type { Handler, Job, PeerQueue, PeerSide, Workers } from './peer-load.ts';

/** BullMQ's connection to the run's redis-server: host and port, the rest at BullMQ's defaults. */
type Connection = { host: string; port: number };

/**
 * BullMQ's side of the peer scenario, at its defaults: a Queue per workload (`peer-<kind>`),
 * Worker instances with `concurrency` slots; completed jobs are kept, as the hub keeps finished
 * work orders.
 */
export class BullmqPeer implements PeerSide {
  private readonly connection: Connection;

  constructor(port: number) {
    this.connection = { host: '127.0.0.1', port };
  }

  async open(kind: string): Promise<PeerQueue> {
    const queue = new Queue<Job>(`peer-${kind}`, { connection: this.connection });
    queue.on('error', (error) => process.stderr.write(`BullMQ queue ${kind}: ${error.message}\n`));
    await queue.waitUntilReady();
    return new BullmqQueue(this.connection, queue);
  }

  async close(): Promise<void> {}
}

class BullmqQueue implements PeerQueue {
  constructor(
    private readonly connection: Connection,
    private readonly queue: Queue<Job>,
  ) {}

  async addBulk(jobs: Job[]): Promise<void> {
    await this.queue.addBulk(jobs.map((data) => ({ name: 'job', data })));
  }

  async add(job: Job): Promise<void> {
    await this.queue.add('job', job);
  }

  /** Workers made with `autorun: false` and ready (connected) before run() starts them. */
  async workers(count: number, concurrency: number, handler: Handler, completed: (job: Job) => void): Promise<Workers> {
    const failures: string[] = [];
    const workers = Array.from({ length: count }, () => {
      const worker = new Worker<Job>(
        this.queue.name,
        async (job) => {
          // A number as the hub's percentage; with a message, both, as the hub's update carries them.
          await handler(job.data, (percentage, message) => job.updateProgress(message === undefined ? percentage : { percentage, message }));
          return { ok: true };
        },
        { connection: this.connection, concurrency, autorun: false },
      );
      // 'completed' fires once moveToFinished has returned: the completion is acknowledged to the worker.
      worker.on('completed', (job) => completed(job.data));
      worker.on('failed', (job, error) => failures.push(`job ${job?.id}: ${error.message}`));
      worker.on('error', (error) => failures.push(`worker: ${error.message}`));
      return worker;
    });
    await Promise.all(workers.map((worker) => worker.waitUntilReady()));
    return {
      failures,
      async run() {
        // run() resolves only when the worker closes.
        for (const worker of workers) void worker.run().catch((error: Error) => failures.push(`worker: ${error.message}`));
      },
      async close() {
        await Promise.all(workers.map((worker) => worker.close()));
      },
    };
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
