import type { CompactionJob } from './compaction.ts';
import { servePacedJobs } from './paced-worker.ts';
import { compact } from './recovery.ts';

/** Worker entry: for each `{ dir, uptoSegment, paced }` received, compacts and reports back. */
servePacedJobs(({ dir, uptoSegment }: CompactionJob, onRecord) => compact(dir, uptoSegment, onRecord));
