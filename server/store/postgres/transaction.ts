import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` in a transaction on one client of the pool (`begin` may set its isolation level):
 * committed once `work` resolves, rolled back when it throws.
 * @example await inTransaction(pool, (client) => client.query('DELETE FROM sb_journal WHERE partition = $1', ['main']));
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    failed = error as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    // A failed client leaves the pool: its query may have been given up unanswered, on a connection that is dead.
    client.release(failed);
  }
}
