import { describe, expect, it } from 'vitest';
import { PacedWorker, type PacedJob, type PacedResult } from '../server/store/paced-worker.ts';

/** A worker thread that answers each job with its number: plain JavaScript, so it starts in milliseconds. */
const ECHO = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (job) => parentPort.postMessage({ ok: true, n: job.n }));`;

class EchoWorker extends PacedWorker<PacedJob & { n: number }, PacedResult & { n: number }> {
  constructor() {
    super(new URL(`data:text/javascript,${encodeURIComponent(ECHO)}`), 'echo');
  }
  echo(n: number) {
    return this.run({ paced: false, n });
  }
}

describe('paced worker', () => {
  it('serves a job that starts while the idle thread is being stopped, whatever that thread’s exit', async () => {
    const worker = new EchoWorker();
    try {
      expect((await worker.echo(1)).n).toBe(1);
      // What the idle timeout does, with the next job (a snapshot) asked for before the old thread has exited.
      const stopping = worker.close();
      const next = worker.echo(2);
      await stopping;
      expect((await next).n).toBe(2);
      expect((await worker.echo(3)).n).toBe(3);
    } finally {
      await worker.close();
    }
  });
});
