import type { Pool } from 'pg';
import { inTransaction } from './transaction.ts';

/**
 * The tables a cluster keeps in PostgreSQL, each keyed by partition (one leader per partition; one
 * partition today, so that several leaders, each owning a share of the workflows, can come later).
 * - `sb_lease`: who leads, under which epoch, until when (the database's clock), and how many
 *   times the journal was truncated (a node holding records from before that loads again).
 * - `sb_journal`: one row per committed record, its journal line (CRC and JSON) as the embedded
 *   journal writes it, and the epoch of the leader that wrote it.
 * - `sb_snapshot`: every document as of a record; the newest two are kept.
 * - `sb_archive`: finished workflows that left memory.
 * - `sb_nodes`: each node's last word: its URL, role and version, and when it said it.
 * - `sb_tokens`: the access tokens every node of the cluster accepts.
 */
const TABLES = `
CREATE TABLE IF NOT EXISTS sb_lease (
  partition text PRIMARY KEY,
  owner text NOT NULL,
  url text NOT NULL,
  epoch bigint NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS sb_journal (
  partition text NOT NULL,
  seq bigint NOT NULL,
  epoch bigint NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (partition, seq)
);
CREATE TABLE IF NOT EXISTS sb_snapshot (
  partition text NOT NULL,
  seq bigint NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partition, seq)
);
CREATE TABLE IF NOT EXISTS sb_nodes (
  partition text NOT NULL,
  node_id text NOT NULL,
  url text NOT NULL,
  role text NOT NULL,
  version bigint NOT NULL,
  seen_at timestamptz NOT NULL,
  PRIMARY KEY (partition, node_id)
);
CREATE TABLE IF NOT EXISTS sb_archive (
  partition text NOT NULL,
  workflow_id text NOT NULL,
  header jsonb NOT NULL,
  summary text NOT NULL,
  body bytea NOT NULL,
  sha256 text NOT NULL,
  PRIMARY KEY (partition, workflow_id)
);
CREATE TABLE IF NOT EXISTS sb_tokens (
  partition text PRIMARY KEY,
  grants jsonb NOT NULL
);
ALTER TABLE sb_lease ADD COLUMN IF NOT EXISTS truncations bigint NOT NULL DEFAULT 0;
`;

/** The partition every node uses today. */
export const DEFAULT_PARTITION = 'main';

/** A lock id for schema changes, so that nodes starting together do not race on CREATE TABLE. */
const SCHEMA_LOCK = 0x5b0a_2d01;

/** Creates the cluster's tables when they are missing. */
export async function ensureSchema(pool: Pool): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await client.query(TABLES);
  });
}
