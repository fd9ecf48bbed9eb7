import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { TokenSync } from '../server/cluster/token-sync.ts';
import { createLogger } from '../server/logger.ts';
import { saveClusterTokens } from '../server/store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION, ensureSchema } from '../server/store/postgres/schema.ts';
import type { TokenGrant } from '../shared/schemas/tokens.ts';
import { control, GRANTS, startHub } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

/**
 * Two cluster nodes with short leases: `first` leads, `second` follows and has applied a first
 * workflow; the connections to PostgreSQL of the one named `proxied` go through a proxy that can forget them.
 */
async function nodesWithProxy(proxied: 'first' | 'second' = 'first') {
  const url = await postgres().newDatabase();
  const proxy = await startTcpProxy(Number(new URL(url).port));
  const fast = { leaseMs: 600, leaseRenewMs: 100, leaseCheckMs: 50 };
  const postgresOf = (node: 'first' | 'second') => (node === proxied ? proxy.through(url) : url);
  const first = await startHub({ postgres: postgresOf('first'), nodeId: 'first', ...fast });
  await untilTrue(() => first.cluster().role === 'leader', 'the first node leads');
  const second = await startHub({ postgres: postgresOf('second'), nodeId: 'second', ...fast });
  // Registered after the hubs' close: the hung sockets are destroyed first, so that they can close.
  onTestFinished(() => proxy.close());
  const onFirst = await control(first);
  await onFirst.createWorkflow({ id: 'wf-before', userQuery: 'committed before' });
  await untilTrue(() => second.state.workflows.has('wf-before'), 'the follower applied it');
  return { proxy, first, second, onFirst };
}

describe.skipIf(!!skip)('a PostgreSQL connection that dies without a word', () => {
  it('does not keep a revoked token in force: token sync notices its listening connection is gone, and reads the tokens again', async () => {
    const url = await postgres().newDatabase();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    onTestFinished(() => pool.end());
    await ensureSchema(pool);
    await saveClusterTokens(pool, DEFAULT_PARTITION, GRANTS);
    const proxy = await startTcpProxy(Number(new URL(url).port));
    const seen: TokenGrant[][] = [];
    const sync = new TokenSync({ url: proxy.through(url), partition: DEFAULT_PARTITION, retryMs: 100, onGrants: (grants) => seen.push(grants), log: createLogger('silent') });
    onTestFinished(async () => {
      await proxy.close();
      await sync.close();
    });
    await sync.start();
    expect(seen.at(-1)?.length).toBe(GRANTS.length);
    // The idle listening connection is forgotten by the network (a NAT, a firewall): no reset, no end.
    expect(proxy.dropEstablished()).toBe(1);
    const revoked = GRANTS.filter((grant) => grant.role !== 'admin');
    await saveClusterTokens(pool, DEFAULT_PARTITION, revoked);
    // Its notification went nowhere; the pings that go unanswered make the connection anew, which reads the tokens.
    await untilTrue(() => seen.at(-1)?.length === revoked.length, 'the revocation reached the node', 10_000);
  }, 20_000);

  it('does not let a leader whose append hangs on such a connection hold every later write: the append is given up at the lease\'s term', async () => {
    const { proxy, second, onFirst } = await nodesWithProxy();
    expect(proxy.dropEstablished()).toBeGreaterThan(0);
    // Renewals go through fresh connections and succeed: only giving up the append answers the write.
    const outcome = await onFirst.createWorkflow({ id: 'wf-hung', userQuery: 'sent into a dead connection' }).then(
      () => 'acknowledged',
      (error: { code?: string }) => error.code ?? String(error),
    );
    expect(['acknowledged', 'UNAVAILABLE']).toContain(outcome);
    // Writes go on, through a fresh connection.
    await onFirst.createWorkflow({ id: 'wf-after', userQuery: 'written after' });
    await untilTrue(() => second.state.workflows.has('wf-after'), 'the follower applied the write after');
    expect(second.state.workflows.has('wf-hung')).toBe(outcome === 'acknowledged');
  }, 30_000);

  it('lets a leader cut off for a moment step down and follow the new leader, holding none of its own writes that never committed', async () => {
    const { proxy, first, second, onFirst } = await nodesWithProxy();
    // A short cut: nothing passes, and the connections open then are forgotten by the network.
    proxy.blackhole();
    proxy.dropEstablished();
    // Its append is given up at the lease's term; the SDK sends the create (it names its id) again, and
    // may reach the new leader with it, following the old one's NOT_LEADER: then it is acknowledged there.
    const sent = onFirst.createWorkflow({ id: 'wf-cut', userQuery: 'sent during the cut' }).then(
      () => 'acknowledged',
      (error: { code?: string }) => error.code ?? String(error),
    );
    await untilTrue(() => second.cluster().role === 'leader', 'the second node leads', 8_000);
    await untilTrue(() => first.cluster().role === 'follower', 'the first node stepped down', 5_000);
    proxy.blackhole(false);
    await (await control(second)).createWorkflow({ id: 'wf-after', userQuery: 'written by the new leader' });
    const outcome = await sent;
    expect(second.state.workflows.has('wf-cut')).toBe(outcome === 'acknowledged');
    // The old leader's memory held the create as it applied it: it must end holding what the leader holds.
    await untilTrue(
      () => first.state.workflows.has('wf-after') && first.cluster().version === second.cluster().version,
      `the first node to follow the new leader (holds wf-after: ${first.state.workflows.has('wf-after')}, version ${first.cluster().version} against ${second.cluster().version})`,
      8_000,
    );
    expect(first.state.workflows.has('wf-cut')).toBe(second.state.workflows.has('wf-cut'));
    expect(JSON.stringify(first.state.workflows.get('wf-cut'))).toBe(JSON.stringify(second.state.workflows.get('wf-cut')));
  }, 30_000);

  it('lets a follower whose connections died without a word take over once the leader is gone', async () => {
    const { proxy, first, second } = await nodesWithProxy('second');
    // Its pooled connections (and its listening one) are forgotten: a query sent on one is never answered.
    expect(proxy.dropEstablished()).toBeGreaterThan(0);
    await first.close();
    await untilTrue(() => second.cluster().role === 'leader', 'the follower took over', 10_000);
    await (await control(second)).createWorkflow({ id: 'wf-after', userQuery: 'written by the new leader' });
    expect([...second.state.workflows.keys()].sort()).toEqual(['wf-after', 'wf-before']);
  }, 30_000);
});
