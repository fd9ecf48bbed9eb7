import type pg from 'pg';
import type { TokenGrant } from '../../../shared/schemas/tokens.ts';
import { defaultGrants, parseTokenList } from '../../transport/auth.ts';
import { inTransaction } from './transaction.ts';

/** The channel told a partition's name whenever its tokens change (at commit). */
export const TOKENS_CHANNEL = 'sb_tokens';

/** A pool, or one client (a transaction's, or a listener's). */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** A lock id (with the partition's hash) for changes to a partition's tokens, held by a transaction. */
const TOKENS_LOCK = 0x5b0a_2d02;

const where = (partition: string) => `the tokens of partition ${partition} in PostgreSQL`;

/**
 * One statement, so the change and the notification commit together: every node re-reads the
 * tokens once it is told, and none is told of a change that did not happen.
 */
const SAVE = `
WITH saved AS (
  INSERT INTO sb_tokens (partition, grants) VALUES ($1, $2)
  ON CONFLICT (partition) DO UPDATE SET grants = EXCLUDED.grants
  RETURNING partition
)
SELECT pg_notify('${TOKENS_CHANNEL}', partition) FROM saved`;

/** A partition's tokens, or undefined when it has none yet; VALIDATION when its row holds no valid token list. */
export async function readClusterTokens(db: Queryable, partition: string): Promise<TokenGrant[] | undefined> {
  const row = (await db.query<{ grants: unknown }>('SELECT grants FROM sb_tokens WHERE partition = $1', [partition])).rows[0];
  return row ? parseTokenList(row.grants, where(partition)) : undefined;
}

/**
 * The cluster's tokens: read from PostgreSQL, or, when the partition has none, generated (one
 * admin, one agent, one monitor token) and stored. Nodes starting together all end up with the
 * one set that was stored first. The tables must exist (`ensureSchema`).
 */
export async function loadOrCreateClusterTokens(db: Queryable, partition: string): Promise<{ grants: TokenGrant[]; created: boolean }> {
  const found = await readClusterTokens(db, partition);
  if (found) return { grants: found, created: false };
  const generated = defaultGrants();
  // jsonb parameters go as JSON text: node-postgres would send a JavaScript array as a PostgreSQL array.
  const inserted = await db.query('INSERT INTO sb_tokens (partition, grants) VALUES ($1, $2) ON CONFLICT (partition) DO NOTHING', [partition, JSON.stringify(generated)]);
  if (inserted.rowCount === 1) return { grants: generated, created: true };
  const stored = await readClusterTokens(db, partition);
  if (!stored) throw new Error(`${where(partition)} were deleted while this node started`);
  return { grants: stored, created: false };
}

/** Puts `grants` in force on every node of the cluster; VALIDATION (and nothing changed) when they are not a valid token list. */
export async function saveClusterTokens(db: Queryable, partition: string, grants: readonly TokenGrant[]): Promise<void> {
  const valid = parseTokenList(grants, 'the new token list');
  await db.query(SAVE, [partition, JSON.stringify(valid)]);
}

/**
 * Reads the tokens, `change`s them and saves the result in one transaction, so that two changes
 * made at once both count. `change` is given [] when the partition has none, and may throw to
 * change nothing. Resolves with the saved list.
 */
export async function changeClusterTokens(pool: pg.Pool, partition: string, change: (grants: TokenGrant[]) => TokenGrant[]): Promise<TokenGrant[]> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [TOKENS_LOCK, partition]);
    const changed = change((await readClusterTokens(client, partition)) ?? []);
    await saveClusterTokens(client, partition, changed);
    return changed;
  });
}
