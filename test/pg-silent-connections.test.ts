import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { TokenSync } from '../server/cluster/token-sync.ts';
import { createLogger } from '../server/logger.ts';
import { saveClusterTokens } from '../server/store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION, ensureSchema } from '../server/store/postgres/schema.ts';
import type { TokenGrant } from '../shared/schemas/tokens.ts';
import { GRANTS } from './helpers/hub.ts';
import { postgresForFile } from './helpers/postgres-file.ts';
import { postgresSkipReason } from './helpers/postgres.ts';
import { startTcpProxy } from './helpers/tcp-proxy.ts';
import { untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

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
});
