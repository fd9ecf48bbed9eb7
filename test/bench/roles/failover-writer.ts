import { connectControl, type ControlClient } from '../../../client-sdk/index.ts';
import { HubError } from '../../../shared/errors.ts';
import { epochMs } from '../open-loop.ts';
import { BENCH_TOKENS } from '../workload.ts';

/** One acknowledged write: when it was sent (its last try), when its ack came, and the node that acked it. */
interface Ack {
  sentAt: number;
  at: number;
  url: string;
}

/**
 * A control client given every node of a cluster that writes without pause: one write in flight
 * (a workflow's progress), the next sent `paceMs` after the previous one was, and a failed one sent
 * again at once (it waits, unsent, while the SDK finds the new leader). It keeps when each write
 * was sent and acknowledged, so that the runner can ask for the first ack after a kill.
 */
export class FailoverWriter {
  private control: ControlClient | undefined;
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private acks: Ack[] = [];
  private failures: Record<string, number> = {};

  async start(options: { urls: string[]; workflowId: string; paceMs: number; requestTimeoutMs: number }): Promise<void> {
    const control = await connectControl({ url: options.urls, token: BENCH_TOKENS.admin, requestTimeoutMs: options.requestTimeoutMs });
    this.control = control;
    const wf = control.workflow(options.workflowId);
    this.running = true;
    this.loop = (async () => {
      for (let n = 0; this.running; n++) {
        const sentAt = epochMs();
        try {
          await wf.updateProgress('failover', n % 101);
          this.acks.push({ sentAt, at: epochMs(), url: control.connection.url });
        } catch (error) {
          const code = error instanceof HubError ? error.code : 'THROWN';
          this.failures[code] = (this.failures[code] ?? 0) + 1;
        }
        const wait = sentAt + options.paceMs - epochMs();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
    })();
  }

  /**
   * The first ack of a write sent after `afterEpochMs` (a kill of the leader: the dead node acks
   * nothing sent after it), once there is one; rejects after `timeoutMs` without one. Also says
   * how many writes failed (and were sent again) since the previous call.
   */
  async firstAckAfter(options: { afterEpochMs: number; timeoutMs: number }): Promise<Ack & { failures: Record<string, number> }> {
    const deadline = epochMs() + options.timeoutMs;
    for (;;) {
      const ack = this.acks.find((a) => a.sentAt > options.afterEpochMs);
      if (ack) {
        const failures = this.failures;
        this.failures = {};
        // The acks before it are of no further use.
        this.acks = this.acks.slice(this.acks.indexOf(ack) + 1);
        return { ...ack, failures };
      }
      if (epochMs() > deadline) throw new Error(`no write sent after the kill was acknowledged within ${options.timeoutMs} ms (failures meanwhile: ${JSON.stringify(this.failures)})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** How many writes were acknowledged since the last firstAckAfter (or the start). */
  acknowledged(): number {
    return this.acks.length;
  }

  async close(): Promise<void> {
    this.running = false;
    // Closing first fails a write waiting for a leader at once, instead of at its timeout.
    await this.control?.close();
    await this.loop;
    this.control = undefined;
  }
}
