import type { Pool, PoolClient } from 'pg';

/**
 * Runs `work` in a transaction on one client of the pool (`begin` may set its isolation level):
 * committed once `work` resolves, rolled back when it throws.
 * @example await inTransaction(pool, (client) => client.query('DELETE FROM sb_journal WHERE partition = $1', ['main']));
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
