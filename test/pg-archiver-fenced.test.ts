import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { control, startHub } from './helpers/hub.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { untilTrue } from './helpers/wait.ts';

const postgres = postgresForFile();

describe.skipIf(!!postgresSkipReason())('the archiver on a leader that lost its lease', () => {
  it('ends its pass when the fenced archive refuses, with a warning, instead of logging each due workflow as a failure and putting it off', async () => {
    const url = await postgres().newDatabase();
    const log = logRecorder('debug');
    // A long lease: the node does not notice at its next renewal that another took the lease meanwhile.
    const hub = await startHub({ postgres: url, nodeId: 'a', leaseMs: 60_000, leaseRenewMs: 20_000, leaseCheckMs: 100, keepFinishedMs: 1500, sweepIntervalMs: 50 }, { logger: log.logger });
    await untilTrue(() => hub.cluster().role === 'leader', 'the node leads');
    const client = await control(hub);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const wf = await client.createWorkflow({ id: `wf-fenced-${i}`, userQuery: 'ended, archived after the lease is gone' });
      await wf.start();
      await wf.cancel();
      ids.push(wf.id);
    }
    // Another node takes the lease (as one would after this node was paused past its term).
    const pool = new pg.Pool({ connectionString: url });
    onTestFinished(() => pool.end());
    await pool.query("UPDATE sb_lease SET owner = 'b', url = 'http://127.0.0.1:1', epoch = epoch + 1, expires_at = now() + interval '1 hour'");
    // keepFinishedMs passes: the archiver tries them, and the fenced archive write refuses them.
    const paused = await log.until('archiving paused: the store refuses writes', {}, 10_000);
    expect(paused).toMatchObject({ level: LEVEL.warn });
    expect(hub.cluster().role).toBe('leader'); // it has not noticed yet: its next renewal is 20 s away
    expect(ids.every((id) => hub.state.workflows.has(id))).toBe(true); // nothing was evicted under a lease it no longer holds
    // The fencing is no failure of those workflows: the pass ends, and none is put off.
    const failures = log.entries.filter((entry) => entry.level === LEVEL.error && entry.msg.startsWith('archiving a workflow failed'));
    expect(failures.map((entry) => entry.workflowId)).toEqual([]);
  }, 30_000);
});
