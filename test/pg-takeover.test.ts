import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { agent, startHub } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

/**
 * Makes PostgreSQL refuse, once, the first journal row that marks an agent away (as the new
 * leader's recovery does), whoever appends it. `offered`: how many such rows were offered to the
 * journal (the first refused); `stored`: how many it holds.
 */
async function refuseFirstAwayMark(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  onTestFinished(() => pool.end());
  // A sequence, not a table: its count is not rolled back with the refused append.
  const awayMark = `'disconnectedSince",[0-9]'`;
  await pool.query(`
    CREATE SEQUENCE refused_appends;
    CREATE FUNCTION refuse_first_away_mark() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.line ~ ${awayMark} THEN
        IF nextval('refused_appends') = 1 THEN RAISE EXCEPTION 'refused for the test'; END IF;
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_first_away_mark BEFORE INSERT ON sb_journal FOR EACH ROW EXECUTE FUNCTION refuse_first_away_mark();`);
  return {
    offered: async () => {
      const { rows } = await pool.query<{ last_value: string; is_called: boolean }>('SELECT last_value, is_called FROM refused_appends');
      return rows[0]!.is_called ? Number(rows[0]!.last_value) : 0;
    },
    stored: async () => (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sb_journal WHERE line ~ ${awayMark}`)).rows[0]!.n,
  };
}

const FAST = { leaseMs: 600, leaseRenewMs: 100, leaseCheckMs: 50 };

/** Cluster nodes named `ids` on a new database, with short leases; the first leads. */
async function nodes(...ids: string[]) {
  const url = await postgres().newDatabase();
  const [first, ...others] = ids;
  const leader = await startHub({ postgres: url, nodeId: first, ...FAST });
  await untilTrue(() => leader.cluster().role === 'leader', 'the first node leads');
  const followers = [];
  for (const id of others) followers.push(await startHub({ postgres: url, nodeId: id, ...FAST }));
  return { url, leader, followers };
}

describe.skipIf(!!skip)('taking over the lead', () => {
  it('is done again when the new leader cannot store its recovery: the agents of the old leader are still marked away', async () => {
    const { url, leader: first, followers } = await nodes('first', 'second');
    const second = followers[0]!;
    // It knows only the first node: once that is gone it never comes back, and only recovery marks it away.
    await agent(first, { agentId: 'w1', agentType: 'worker' });
    await untilTrue(() => second.state.agents?.['w1'] !== undefined, 'the follower applied the registration');
    const { offered, stored } = await refuseFirstAwayMark(url);
    await first.close();
    // Applied in memory first, the mark counts once stored: after the refusal, by the lease taken again.
    const deadline = Date.now() + 10_000;
    while ((await stored()) === 0) {
      if (Date.now() > deadline) throw new Error(`the away mark was never stored (${await offered()} offered; the second node is a ${second.cluster().role})`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The refused one, and the one stored.
    expect(await offered()).toBeGreaterThanOrEqual(2);
    await untilTrue(() => second.cluster().role === 'leader', 'the second node to lead');
    expect(typeof second.state.agents?.['w1']?.disconnectedSince).toBe('number');
  }, 30_000);

  it('keeps the lease while taking over outlasts its term: no other node takes it meanwhile', async () => {
    const { url, leader: first, followers } = await nodes('first', 'second', 'third');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    onTestFinished(() => db.end());
    // Taking over reads the archive's headers: with the table locked, that read waits.
    await db.query('BEGIN');
    await db.query('LOCK TABLE sb_archive IN ACCESS EXCLUSIVE MODE');
    await first.close();
    // Read on the database's clock, which times the lease (now() would stay at the transaction's start).
    const lease = async () => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return (await db.query<{ owner: string; epoch: string; at: Date }>('SELECT owner, epoch, clock_timestamp() AS at FROM sb_lease')).rows[0]!;
    };
    let taking = await lease();
    while (taking.owner === 'first') taking = await lease();
    // Three terms past the taking, with the taker still held up by the lock: nobody took the lease from it.
    let later = taking;
    while (later.at.getTime() < taking.at.getTime() + 3 * FAST.leaseMs) later = await lease();
    expect({ owner: later.owner, epoch: later.epoch }).toEqual({ owner: taking.owner, epoch: taking.epoch });
    await db.query('COMMIT');
    const leader = followers[taking.owner === 'second' ? 0 : 1]!;
    await untilTrue(() => leader.cluster().role === 'leader', `${taking.owner} to lead`);
    expect(leader.cluster().epoch).toBe(Number(taking.epoch));
  }, 30_000);
});
