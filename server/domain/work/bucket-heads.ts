import { BTree } from '../machinery/sorted-tree.ts';

/** Where a bucket is filed: its queue's first entry (key, seq) when filed, and a number of its own for ties. */
export interface Head {
  key: number;
  seq: number;
  n: number;
}

/** What BucketHeads needs of a bucket: its task type, its queue's first entry, and where it is filed. */
export interface HeadedBucket {
  taskType: string;
  queue: { peek(): { key: number; seq: number } | undefined };
  filed?: Head | undefined;
}

const compare = (a: number, b: number) => (a < b ? -1 : a > b ? 1 : 0);
/** The scheduler's queue order (higher key first, then lower seq), which no entry of a bucket can beat its first. */
const byHead = (a: Head, b: Head) => compare(b.key, a.key) || compare(a.seq, b.seq) || compare(a.n, b.n);

/** Whether `head` comes before `than` in queue order. */
export function before(head: { key: number; seq: number }, than: { key: number; seq: number }): boolean {
  return head.key > than.key || (head.key === than.key && head.seq < than.seq);
}

/**
 * The buckets of each task type, sorted by their queue's first entry. A free agent walks those of
 * its task types in this order and stops at the first whose first entry cannot beat what it found
 * (scheduler.ts): otherwise every freed slot looked at every bucket of the hub, one per workflow
 * with queued work, whatever its task type. The index refiles a bucket at each change of its queue.
 */
export class BucketHeads<B extends HeadedBucket> {
  private readonly byType = new Map<string, InstanceType<typeof BTree<Head, B>>>();
  /** Every bucket, for agents of any task type (`*`): one walk, not one per task type at each step. */
  private readonly all = new BTree<Head, B>(undefined, byHead);
  private filings = 0;

  /** Files a bucket anew after its queue changed: under its first entry, or nowhere once it is empty. */
  refile(bucket: B): void {
    const first = bucket.queue.peek();
    if (bucket.filed && first && bucket.filed.key === first.key && bucket.filed.seq === first.seq) return;
    this.remove(bucket);
    if (!first) return;
    let tree = this.byType.get(bucket.taskType);
    if (!tree) this.byType.set(bucket.taskType, (tree = new BTree<Head, B>(undefined, byHead)));
    bucket.filed = { key: first.key, seq: first.seq, n: ++this.filings };
    tree.set(bucket.filed, bucket);
    this.all.set(bucket.filed, bucket);
  }

  /** Takes a bucket out (dropped). */
  remove(bucket: B): void {
    if (!bucket.filed) return;
    const tree = this.byType.get(bucket.taskType);
    tree?.delete(bucket.filed);
    if (tree?.size === 0) this.byType.delete(bucket.taskType);
    this.all.delete(bucket.filed);
    bucket.filed = undefined;
  }

  /**
   * The bucket filed next after `after` (from the first without it) among those of `taskTypes`
   * (`*`: every type), with where it is filed. A bucket refiled since it was returned may come again.
   */
  next(taskTypes: readonly string[], after: Head | undefined): { bucket: B; head: Head } | undefined {
    let found: [Head, B] | undefined;
    const look = (tree: InstanceType<typeof BTree<Head, B>> | undefined) => {
      const pair = tree?.nextHigherPair(after);
      if (pair && (!found || byHead(pair[0], found[0]) < 0)) found = pair;
    };
    if (taskTypes.includes('*')) look(this.all);
    else for (const type of taskTypes) look(this.byType.get(type));
    return found && { bucket: found[1], head: found[0] };
  }

  /** Empties it (the index is rebuilt). */
  clear(): void {
    this.byType.clear();
    this.all.clear();
  }
}
