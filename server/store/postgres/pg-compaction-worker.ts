import { servePacedJobs } from '../paced-worker.ts';
import { compactPartition, type PgCompactionJob } from './pg-compaction.ts';
import { BODY_TIMEOUT_MS, boundedPool } from './pg-pool.ts';

/** Worker entry: for each `{ url, partition, uptoSeq, paced, fence }` received, connects, compacts and reports back. */
servePacedJobs(async ({ url, partition, uptoSeq, fence }: PgCompactionJob, onRecord) => {
  // Every query here moves much (a snapshot, pages of rows); one that died without a word fails the job.
  // A connection lost while idle fails the next query, and so the job; it must not end the thread.
  const pool = boundedPool(url, 2, BODY_TIMEOUT_MS);
  try {
    return await compactPartition(pool, partition, uptoSeq, onRecord, fence);
  } finally {
    await pool.end();
  }
});
