import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { encodeRecords, type JournalRecord } from '../server/store/records.ts';
import { PostgresStore } from '../server/store/postgres/postgres-store.ts';
import { tempDir } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';

const postgres = postgresForFile();

/** Records `from` to `to`: the first creates document wf, each later one sets its counter. */
const records = (from: number, to: number): JournalRecord[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const seq = from + i;
    const op = seq === 1 ? ({ op: 'add', path: '', value: { n: 1 } } as const) : ({ op: 'replace', path: '/n', value: seq } as const);
    return { seq, at: 1000 + seq, changes: [{ doc: 'wf', v: seq, ops: [op] }] };
  });

describe.skipIf(!!postgresSkipReason())('the PostgreSQL store', () => {
  it('counts the journal rows a former leader left, and no snapshot holds, toward the next snapshot', async () => {
    const url = await postgres().newDatabase();
    const written = encodeRecords(records(1, 15));
    const more = encodeRecords(records(16, 25));
    // Due once both are in the journal, and not before: neither leader's own writes reach it.
    const threshold = written.length + more.length;
    const db = new pg.Pool({ connectionString: url });
    onTestFinished(() => db.end());
    /** A node's store, opened, leading under `epoch` (the lease row moved to it, as taking the lease does). */
    const leading = async (owner: string, epoch: number) => {
      const store = new PostgresStore({ url, partition: 'main', dataDir: tempDir(), snapshotAfterBytes: threshold, snapshotJournalRatio: 0, onWarning: () => undefined });
      await store.open();
      onTestFinished(async () => {
        store.fence = undefined;
        await store.close();
      });
      await db.query(
        `INSERT INTO sb_lease (partition, owner, url, epoch, expires_at) VALUES ('main', $1, 'http://127.0.0.1:1', $2, now() + interval '1 hour')
         ON CONFLICT (partition) DO UPDATE SET owner = EXCLUDED.owner, epoch = EXCLUDED.epoch`,
        [owner, epoch],
      );
      await store.lead({ owner, epoch });
      return store;
    };
    const first = await leading('node-a', 1);
    await first.append(written, 1);
    expect(first.snapshotDue()).toBe(false);
    // node-a dies without a snapshot; node-b leads, and the rows node-a wrote count.
    const second = await leading('node-b', 2);
    expect(second.snapshotDue()).toBe(false);
    await second.append(more, 16);
    expect(second.snapshotDue()).toBe(true);
  });
});
