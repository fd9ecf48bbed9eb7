import type { Pool } from 'pg';

/** Who holds a partition's lease, as the table says. */
export interface LeaseHolder {
  nodeId: string;
  url: string;
  epoch: number;
  /** Whether the lease is still within its term by the database's clock. */
  live: boolean;
  /** How many times the journal was cut back (--truncate-damaged-journal): records a node holds from before may be gone. */
  truncations: number;
}

/**
 * The leadership lease of one partition: a row with an owner, an epoch and an expiry. Terms are
 * measured by the database's clock, so nodes need not agree on the time. Taking the lease bumps
 * the epoch, which fences off every append of the holder before (see pg-journal.ts).
 */
export class LeaseTable {
  constructor(
    private readonly pool: Pool,
    private readonly partition: string,
  ) {}

  /**
   * Takes the lease when it is free or expired, or when this process holds it under `heldEpoch` (a
   * leader that must fence off its own earlier appends); returns the new epoch, or undefined when
   * another holds it. A live lease under this node's id that this process did not take (the same
   * id given to two nodes, or this node before a restart) is left to run out: else two nodes of
   * one id would take it from each other at every look.
   */
  async tryAcquire(nodeId: string, url: string, leaseMs: number, heldEpoch?: number): Promise<number | undefined> {
    const result = await this.pool.query<{ epoch: string }>(
      `INSERT INTO sb_lease (partition, owner, url, epoch, expires_at) VALUES ($1, $2, $3, 1, now() + $4 * interval '1 millisecond')
       ON CONFLICT (partition) DO UPDATE SET owner = EXCLUDED.owner, url = EXCLUDED.url, epoch = sb_lease.epoch + 1, expires_at = EXCLUDED.expires_at
       WHERE sb_lease.expires_at < now() OR (sb_lease.owner = EXCLUDED.owner AND sb_lease.epoch = $5)
       RETURNING epoch`,
      [this.partition, nodeId, url, leaseMs, heldEpoch ?? null],
    );
    const row = result.rows[0];
    return row ? Number(row.epoch) : undefined;
  }

  /** Extends the lease held under `epoch`; false when it was taken over. */
  async renew(nodeId: string, epoch: number, leaseMs: number): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE sb_lease SET expires_at = now() + $4 * interval '1 millisecond' WHERE partition = $1 AND owner = $2 AND epoch = $3`,
      [this.partition, nodeId, epoch, leaseMs],
    );
    return result.rowCount === 1;
  }

  /** Gives the lease up at once (a clean stop), so that another node need not wait for its term to end. */
  async release(nodeId: string, epoch: number): Promise<void> {
    await this.pool.query(`UPDATE sb_lease SET expires_at = now() - interval '1 millisecond' WHERE partition = $1 AND owner = $2 AND epoch = $3`, [this.partition, nodeId, epoch]);
  }

  /** The current holder, or undefined when no node ever held the lease. */
  async holder(): Promise<LeaseHolder | undefined> {
    const result = await this.pool.query<{ owner: string; url: string; epoch: string; live: boolean; truncations: string }>(
      'SELECT owner, url, epoch, expires_at > now() AS live, truncations FROM sb_lease WHERE partition = $1',
      [this.partition],
    );
    const row = result.rows[0];
    return row ? { nodeId: row.owner, url: row.url, epoch: Number(row.epoch), live: row.live, truncations: Number(row.truncations) } : undefined;
  }
}
