import pg from 'pg';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { encodeRecords, type JournalRecord } from '../server/store/records.ts';
import { compactPartition } from '../server/store/postgres/pg-compaction.ts';
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

afterEach(() => {
  vi.restoreAllMocks();
});

describe.skipIf(!!postgresSkipReason())('the PostgreSQL store', () => {
  it('loads the state at the newest record although the leader snapshots twice, and trims, between its read of the snapshot and of the journal', async () => {
    const url = await postgres().newDatabase();
    const db = new pg.Pool({ connectionString: url });
    onTestFinished(() => db.end());
    const writer = new PostgresStore({ url, partition: 'main', queryTimeoutMs: 5000, dataDir: tempDir(), snapshotAfterBytes: 1 << 30, snapshotJournalRatio: 0, onWarning: () => undefined });
    await writer.open();
    onTestFinished(async () => {
      writer.fence = undefined;
      await writer.close();
    });
    await db.query(`INSERT INTO sb_lease (partition, owner, url, epoch, expires_at) VALUES ('main', 'node-a', 'http://127.0.0.1:1', 1, now() + interval '1 hour')`);
    await writer.lead({ owner: 'node-a', epoch: 1 });
    await writer.append(encodeRecords(records(1, 10)), 1);
    await compactPartition(db, 'main', 4);

    // The first read of the journal by the loading node waits until the leader has snapshotted at 6
    // and 8, which trims the rows up to 6: rows 5 and 6, after the snapshot it read, are gone.
    let raced = false;
    const query = pg.Client.prototype.query;
    vi.spyOn(pg.Client.prototype, 'query').mockImplementation(async function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (!raced && text.includes('FROM sb_journal')) {
        raced = true;
        await compactPartition(db, 'main', 6);
        await compactPartition(db, 'main', 8);
      }
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query);
    const loading = new PostgresStore({ url, partition: 'main', queryTimeoutMs: 5000, dataDir: tempDir(), snapshotAfterBytes: 1 << 30, snapshotJournalRatio: 0, onWarning: () => undefined });
    onTestFinished(() => loading.close());
    const { seq, docs } = await loading.open();
    expect(raced).toBe(true);
    expect(seq).toBe(10);
    expect(docs.get('wf')?.doc).toEqual({ n: 10 });
  });

  it('counts the journal rows a former leader left, and no snapshot holds, toward the next snapshot', async () => {
    const url = await postgres().newDatabase();
    const written = encodeRecords(records(1, 15));
    const more = encodeRecords(records(16, 25));
    // Due once both are in the journal, and not before: neither leader's own writes reach it.
    const threshold = written.length + more.length;
    const leading = leadingStores(url, threshold);
    const first = await leading('node-a', 1);
    await first.append(written, 1);
    expect(first.snapshotDue()).toBe(false);
    // node-a dies without a snapshot; node-b leads, and the rows node-a wrote count.
    const second = await leading('node-b', 2);
    expect(second.snapshotDue()).toBe(false);
    await second.append(more, 16);
    expect(second.snapshotDue()).toBe(true);
  });

  it("stores no snapshot from a leader frozen through a truncation of the journal: a node that loads later holds the new leader's records, not the deleted ones", async () => {
    const url = await postgres().newDatabase();
    const leading = leadingStores(url, 1 << 30);
    const frozen = await leading('node-a', 1);
    await frozen.append(encodeRecords(records(1, 10)), 1);
    // node-a is frozen past its lease; row 6 is damaged, a node truncates from it, and node-b leads and writes its own 6 to 8.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    onTestFinished(() => db.end());
    await db.query(`UPDATE sb_lease SET expires_at = now() - interval '1 second'`);
    await db.query(`UPDATE sb_journal SET line = 'not a record' WHERE seq = 6`);
    const truncating = new PostgresStore({ url, partition: 'main', queryTimeoutMs: 5000, dataDir: tempDir(), snapshotAfterBytes: 1 << 30, snapshotJournalRatio: 0, truncateDamagedJournal: true, onWarning: () => undefined });
    await truncating.open();
    await truncating.close();
    const successor = await leading('node-b', 3);
    await successor.append(encodeRecords(records(6, 8)), 6);

    // node-a wakes up in the middle of a snapshot of the state it holds, records 6 to 10 included.
    frozen.startSnapshot({ seq: 10, docs: [['wf', { v: 10, doc: { n: 10 } }]] });
    await frozen.snapshot();
    const { seq, docs } = await successor.load();
    expect([seq, docs.get('wf')?.doc]).toEqual([8, { n: 8 }]);
  });
});

/**
 * Opens a node's store on `url` leading under `epoch` (the lease row moved to it, as taking the
 * lease does), snapshotting after `snapshotAfterBytes`; each is closed when the test ends.
 */
function leadingStores(url: string, snapshotAfterBytes: number): (owner: string, epoch: number) => Promise<PostgresStore> {
  const db = new pg.Pool({ connectionString: url });
  onTestFinished(() => db.end());
  return async (owner, epoch) => {
    const store = new PostgresStore({ url, partition: 'main', queryTimeoutMs: 5000, dataDir: tempDir(), snapshotAfterBytes, snapshotJournalRatio: 0, onWarning: () => undefined });
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
}
