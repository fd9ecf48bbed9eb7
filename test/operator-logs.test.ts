import { describe, expect, it, onTestFinished } from 'vitest';
import { connectAgent, connectControl } from '../client-sdk/index.ts';
import { EmbeddedStore } from '../server/index.ts';
import { SLOW_JOURNAL_WRITE_MS } from '../server/operator-log.ts';
import { breakErrorField, mendErrorField } from './helpers/broken-order.ts';
import { codeOf } from './helpers/errors.ts';
import { agent, control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { rawGet } from './helpers/http.ts';
import { LEVEL, logRecorder, type LogRecorder } from './helpers/log-recorder.ts';
import { untilOrder } from './helpers/wait.ts';
import { WrappedStore } from './helpers/wrapped-store.ts';
import { FAST_LEASE } from './helpers/cluster.ts';
import { postgresSkipReason, startPostgres } from './helpers/postgres.ts';

const BAD_TOKEN = 'sb_agent_not-a-token-of-this-hub';

/** The one entry with this message and fields; fails when there are none or several. */
function once(log: LogRecorder, msg: string, fields: Record<string, unknown> = {}) {
  const found = log.find(msg, fields);
  expect(found, `"${msg}" ${JSON.stringify(fields)} logged once`).toHaveLength(1);
  return found[0]!;
}

describe('the hub log', () => {
  it('tells the story of a connection, a registration, a failure, its retry, the order failing for good and a refused token, each once and with no token in it', async () => {
    const log = logRecorder();
    const hub = await startHub({ sweepIntervalMs: 20, backoffBaseMs: 10, backoffMaxMs: 10 }, { logger: log.logger });
    const client = await control(hub);
    expect(once(log, 'client connected', { namespace: '/control' })).toMatchObject({ level: LEVEL.info, role: 'admin', tokenName: 'test-admin' });

    const wf = await client.createWorkflow({ userQuery: 'failing work' });
    await wf.start();
    const flaky = await agent(hub, { agentId: 'flaky', agentType: 'worker', logger: null });
    expect(once(log, 'client connected', { namespace: '/agent' })).toMatchObject({ level: LEVEL.info, role: 'agent', tokenName: 'test-agent' });
    expect(once(log, 'agent registered')).toMatchObject({ level: LEVEL.info, agentId: 'flaky', agentType: 'worker', how: 'new' });
    await flaky.onTask('explode', (task) => {
      throw new Error(`boom ${task.attempt}`);
    });
    expect(once(log, 'agent registration updated')).toMatchObject({ level: LEVEL.debug, agentId: 'flaky', taskTypes: ['explode'] });
    await wf.createWorkOrder({ id: 'doomed', taskType: 'explode', maxAttempts: 2 });
    expect((await untilOrder(hub, wf.id, 'doomed', 'failed')).attempts).toBe(2);

    const order = { workflowId: wf.id, workOrderId: 'doomed' };
    expect(once(log, 'work order attempt failed', { attempt: 1 })).toMatchObject({ level: LEVEL.warn, ...order, agentId: 'flaky', outcome: 'failed', error: 'boom 1' });
    const retry = once(log, 'work order will be retried');
    expect(retry).toMatchObject({ level: LEVEL.info, ...order, attempt: 2 });
    expect(Date.parse(retry.retryAt as string)).toBeGreaterThan(0);
    expect(once(log, 'work order attempt failed', { attempt: 2 })).toMatchObject({ level: LEVEL.warn, ...order, error: 'boom 2' });
    expect(once(log, 'work order failed for good (dead-lettered)')).toMatchObject({
      level: LEVEL.warn,
      ...order,
      taskType: 'explode',
      attempts: 2,
      error: 'failed after 2 attempt(s): boom 2',
    });

    expect(await codeOf(connectAgent({ url: hub.url, token: BAD_TOKEN, agentId: 'intruder', agentType: 'worker' }))).toBe('UNAUTHENTICATED');
    expect(once(log, 'connection refused', { namespace: '/agent' })).toMatchObject({ level: LEVEL.warn, code: 'UNAUTHENTICATED', reason: 'unknown token' });
    expect(await codeOf(connectControl({ url: hub.url, token: TOKENS.monitor }))).toBe('FORBIDDEN');
    expect(once(log, 'connection refused', { namespace: '/control' })).toMatchObject({ level: LEVEL.warn, code: 'FORBIDDEN', role: 'monitor', tokenName: 'test-monitor' });

    expect((await rawGet(hub.url, '/api/workflows?token=' + BAD_TOKEN)).status).toBe(401);
    expect(once(log, 'http request refused')).toMatchObject({ level: LEVEL.warn, path: '/api/workflows', code: 'UNAUTHENTICATED' });

    await flaky.close();
    expect(await log.until('client disconnected', { namespace: '/agent' })).toMatchObject({ level: LEVEL.info, agentId: 'flaky', tokenName: 'test-agent', reason: 'client namespace disconnect' });
    expect(log.find('agent registered')).toHaveLength(1);
    expect(log.find('connection refused')).toHaveLength(2);

    for (const secret of [...Object.values(TOKENS), BAD_TOKEN]) {
      expect(log.lines.filter((line) => line.includes(secret)), `lines holding ${secret}`).toEqual([]);
    }
  });

  it('says when an agent goes offline after its grace period, and when the pool forgets it, once each', async () => {
    const log = logRecorder();
    const hub = await startHub({ sweepIntervalMs: 10, graceMs: 0, forgetAgentsAfterMs: 50 }, { logger: log.logger });
    const gone = await agent(hub, { agentId: 'gone', agentType: 'worker' });
    await gone.close();
    const offline = await log.until('agent offline: its grace period expired');
    const forgotten = await log.until('agent forgotten: offline longer than forgetAgentsAfterMs');
    expect(offline).toMatchObject({ level: LEVEL.info, agentId: 'gone' });
    expect(forgotten).toMatchObject({ level: LEVEL.info, agentId: 'gone' });
    expect(log.entries.indexOf(offline)).toBeLessThan(log.entries.indexOf(forgotten));
    // Later sweeps have nothing more to say about it.
    for (let i = 0; i < 3; i++) await hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });
    once(log, 'agent offline: its grace period expired');
    once(log, 'agent forgotten: offline longer than forgetAgentsAfterMs');
  });

  it('logs a timer of the sweep whose change threw as an error, once per try, while the other timers run; it runs once mended', async () => {
    const log = logRecorder();
    const hub = await startHub({ sweepIntervalMs: 20 }, { logger: log.logger });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'a broken timer' });
    await wf.start();
    await wf.createWorkOrder({ id: 'late', taskType: 'nobody', timeouts: { overallMs: 1_000 } });
    await wf.createWorkOrder({ id: 'stuck', taskType: 'nobody', timeouts: { overallMs: 1_000 } });
    // A bug, as the test makes one: writing the order's error throws, after its end has written other fields.
    const stuck = hub.state.workflows.get(wf.id)!.workOrders.stuck!;
    breakErrorField(stuck);

    expect((await untilOrder(hub, wf.id, 'late', 'failed')).error).toBe('overall timeout of 1000 ms exceeded');
    const failure = await log.until('a timer of the sweep failed: its change was undone, the others ran; it is tried again later');
    expect(failure).toMatchObject({ level: LEVEL.error, timer: `timeout:${wf.id}\u0000stuck`, failures: 1, retryInMs: 1_000 });
    expect((failure.err as { stack: string }).stack).toContain('broken on purpose');
    expect((await wf.get()).workOrders.stuck!.state).toBe('queued');

    mendErrorField(stuck);
    expect((await untilOrder(hub, wf.id, 'stuck', 'failed')).error).toBe('overall timeout of 1000 ms exceeded');
    expect(log.find(failure.msg)).toHaveLength(1);
  });

  it('warns of a journal write slower than 100 ms, with how long it took and how many records it held', async () => {
    const log = logRecorder();
    const dataDir = tempDir();
    /** A disk that takes longer than the threshold to write. */
    class SlowStore extends WrappedStore {
      override async append(records: string | Uint8Array, firstSeq: number) {
        await new Promise((resolve) => setTimeout(resolve, SLOW_JOURNAL_WRITE_MS + 50));
        return this.inner.append(records, firstSeq);
      }
    }
    const store = new SlowStore(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 32 * 1024 * 1024, onWarning: () => undefined }));
    const hub = await startHub({ dataDir }, { logger: log.logger, store });
    await (await control(hub)).createWorkflow({ userQuery: 'a slow write' });
    // Told before the write is acknowledged, so it is there once the request is answered.
    const slow = once(log, 'slow journal write');
    expect(slow.level).toBe(LEVEL.warn);
    expect(slow.ms).toBeGreaterThan(SLOW_JOURNAL_WRITE_MS);
    expect(slow.records).toBe(1);
  });

  it('logs a snapshot as it starts (debug) and once it is written (info), with its size and duration', async () => {
    const log = logRecorder();
    const hub = await startHub({ snapshotAfterBytes: 1024 }, { logger: log.logger });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'enough to snapshot' });
    await wf.createWorkOrders(Array.from({ length: 20 }, (_, i) => ({ id: `o${i}`, taskType: 'later', description: 'x'.repeat(100) })));
    const written = await log.until('snapshot written');
    const started = log.find('snapshot started')[0]!;
    expect(started).toMatchObject({ level: LEVEL.debug, from: 'memory' });
    expect(started.journalBytes).toBeGreaterThanOrEqual(1024);
    expect(written).toMatchObject({ level: LEVEL.info, from: 'memory' });
    expect(written.bytes).toBeGreaterThan(1024);
    expect(written.docs).toBeGreaterThanOrEqual(1);
    expect(written.seq).toBeGreaterThanOrEqual(1);
    expect(typeof written.ms).toBe('number');
    expect(log.entries.indexOf(started)).toBeLessThan(log.entries.indexOf(written));
  });
});

describe('when snapshots are taken', () => {
  /** The journal bytes at which the second snapshot started, and the size of the first, with orders of ~600 bytes written one at a time. */
  async function secondSnapshot(snapshotJournalRatio: number) {
    const log = logRecorder();
    const hub = await startHub({ snapshotAfterBytes: 1024, snapshotJournalRatio }, { logger: log.logger });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a state much bigger than snapshotAfterBytes' });
    await wf.createWorkOrders(Array.from({ length: 40 }, (_, i) => ({ id: `big-${i}`, taskType: 'later', description: 'x'.repeat(500) })));
    const first = await log.until('snapshot written');
    for (let i = 0; log.find('snapshot started').length < 2 && i < 200; i++) await wf.createWorkOrder({ id: `small-${i}`, taskType: 'later', description: 'y'.repeat(100) });
    const started = log.find('snapshot started');
    expect(started).toHaveLength(2);
    return { firstBytes: first.bytes as number, secondAt: started[1]!.journalBytes as number };
  }

  it('waits after a snapshot for as much journal as it holds (snapshotJournalRatio 1, the default), or for snapshotAfterBytes alone (0)', async () => {
    const proportional = await secondSnapshot(1);
    expect(proportional.firstBytes).toBeGreaterThan(20_000);
    expect(proportional.secondAt).toBeGreaterThanOrEqual(proportional.firstBytes);
    const fixed = await secondSnapshot(0);
    expect(fixed.secondAt).toBeGreaterThanOrEqual(1024);
    expect(fixed.secondAt).toBeLessThan(fixed.firstBytes / 4);
  });
});

describe.skipIf(!!postgresSkipReason())('the hub log of a cluster node', () => {
  it('logs a snapshot stored in PostgreSQL as it starts and once it is written', async () => {
    const server = await startPostgres();
    onTestFinished(() => server.destroy());
    const log = logRecorder();
    const hub = await startHub({ postgres: await server.newDatabase(), nodeId: 'solo', snapshotAfterBytes: 1024, ...FAST_LEASE }, { logger: log.logger });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'enough to snapshot' });
    await wf.createWorkOrders(Array.from({ length: 20 }, (_, i) => ({ id: `o${i}`, taskType: 'later', description: 'x'.repeat(100) })));
    const written = await log.until('snapshot written');
    expect(log.find('snapshot started')[0]).toMatchObject({ level: LEVEL.debug, from: 'memory' });
    expect(written).toMatchObject({ level: LEVEL.info, from: 'memory' });
    expect(written.bytes).toBeGreaterThan(1024);
  });
});
