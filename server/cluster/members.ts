import type { Pool } from 'pg';

/** A node as the cluster last heard of it. */
export interface Member {
  nodeId: string;
  url: string;
  role: 'leader' | 'follower';
  version: number;
  /** How long ago it last said so (ms, by the database's clock). */
  seenMsAgo: number;
}

/** Nodes not heard of for this long are left out of the list (they still appear once they speak again). */
const FORGET_AFTER_MS = 60_000;

/** Who is in the cluster: every node writes a row at each tick, so that any node can list the others. */
export class MemberTable {
  constructor(
    private readonly pool: Pool,
    private readonly partition: string,
  ) {}

  /** Records this node's role and version now. */
  async beat(member: Omit<Member, 'seenMsAgo'>): Promise<void> {
    await this.pool.query(
      `INSERT INTO sb_nodes (partition, node_id, url, role, version, seen_at) VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (partition, node_id) DO UPDATE SET url = EXCLUDED.url, role = EXCLUDED.role, version = EXCLUDED.version, seen_at = EXCLUDED.seen_at`,
      [this.partition, member.nodeId, member.url, member.role, member.version],
    );
  }

  /** The nodes heard of in the last minute, by name. */
  async list(): Promise<Member[]> {
    const result = await this.pool.query<{ node_id: string; url: string; role: Member['role']; version: string; ago: number }>(
      `SELECT node_id, url, role, version, (extract(epoch FROM now() - seen_at) * 1000)::int AS ago FROM sb_nodes
       WHERE partition = $1 AND seen_at > now() - $2 * interval '1 millisecond' ORDER BY node_id`,
      [this.partition, FORGET_AFTER_MS],
    );
    return result.rows.map((row) => ({ nodeId: row.node_id, url: row.url, role: row.role, version: Number(row.version), seenMsAgo: row.ago }));
  }
}
