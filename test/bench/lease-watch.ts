import pg from 'pg';
import { DEFAULT_PARTITION } from '../../server/store/postgres/schema.ts';
import { epochMs } from './open-loop.ts';

/** How often the lease row is read (ms). */
const EVERY_MS = 100;

/** A change of the lease's holder seen by the watch. */
export interface LeaseChange {
  phase: string;
  atEpochMs: number;
  owner: string;
  epoch: number;
}

/**
 * Reads a cluster's lease row in PostgreSQL every 100 ms, as the database holds it: who leads,
 * under which epoch, and how long the term has left by the database's clock. Per phase it keeps
 * the least time left (how near the leader came to losing its lease: it renews every
 * leaseRenewMs, so under no load the least is about leaseMs − leaseRenewMs) and every change of
 * holder, which during a load no one caused is a leader lost.
 */
export class LeaseWatch {
  readonly changes: LeaseChange[] = [];
  /** The least time the lease had left, by phase (ms; negative: it had expired). */
  readonly leastLeftMs: Record<string, number> = {};
  private current = '';
  private holder: { owner: string; epoch: number } | undefined;
  private running = true;
  private readonly loop: Promise<void>;

  private constructor(private readonly client: pg.Client) {
    this.loop = this.poll();
  }

  /** Starts watching the lease of the cluster on database `url`. */
  static async start(url: string): Promise<LeaseWatch> {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    await client.connect();
    return new LeaseWatch(client);
  }

  /** Attributes the readings from now on to `name` ('' for none). */
  phase(name: string): void {
    this.current = name;
  }

  /** The holder as last read. */
  get leader(): { owner: string; epoch: number } | undefined {
    return this.holder;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client.end().catch(() => undefined);
  }

  private async poll(): Promise<void> {
    while (this.running) {
      try {
        const { rows } = await this.client.query<{ owner: string; epoch: string; left_ms: number }>(
          'SELECT owner, epoch, extract(epoch from (expires_at - now())) * 1000 AS left_ms FROM sb_lease WHERE partition = $1',
          [DEFAULT_PARTITION],
        );
        const row = rows[0];
        if (row) {
          const epoch = Number(row.epoch);
          if (this.holder && this.holder.epoch !== epoch) this.changes.push({ phase: this.current, atEpochMs: epochMs(), owner: row.owner, epoch });
          this.holder = { owner: row.owner, epoch };
          if (this.current) this.leastLeftMs[this.current] = Math.min(this.leastLeftMs[this.current] ?? Infinity, Number(row.left_ms));
        }
      } catch {
        // PostgreSQL busy or away for a moment: the next reading tells.
      }
      await new Promise((resolve) => setTimeout(resolve, EVERY_MS));
    }
  }
}
