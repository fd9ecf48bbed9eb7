import pg from 'pg';
import { servePacedJobs } from '../paced-worker.ts';
import { compactPartition, type PgCompactionJob } from './pg-compaction.ts';

/** Worker entry: for each `{ url, partition, uptoSeq, paced, fence }` received, connects, compacts and reports back. */
servePacedJobs(async ({ url, partition, uptoSeq, fence }: PgCompactionJob, onRecord) => {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  // A connection lost while idle fails the next query, and so the job; it must not end the thread.
  pool.on('error', () => undefined);
  try {
    return await compactPartition(pool, partition, uptoSeq, onRecord, fence);
  } finally {
    await pool.end();
  }
});
