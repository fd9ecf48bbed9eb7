import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
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
import { untilTrue } from './helpers/wait.ts';

const skip = postgresSkipReason();
const postgres = postgresForFile();

/**
 * A TCP proxy whose established connections can be dropped silently (as a NAT, a stateful firewall
 * or a load balancer forgetting idle or established flows does: no RST, no FIN), while new
 * connections still pass: the database stays reachable, the old sockets just never answer again.
 */
async function flowDroppingProxy(targetPort: number): Promise<{ port: number; dropEstablished(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const dropped = new WeakSet<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const forward = (from: Socket, to: Socket) => from.on('data', (chunk: Buffer) => void (dropped.has(from) || to.write(chunk)));
  const server = createServer((client) => {
    track(client);
    const upstream = connect(targetPort, '127.0.0.1');
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    dropEstablished: () => {
      for (const socket of sockets) dropped.add(socket);
      return sockets.size / 2;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

function viaProxy(url: string, port: number): string {
  const proxied = new URL(url);
  proxied.port = String(port);
  return proxied.toString();
}

describe.skipIf(!!skip)('a PostgreSQL connection that dies without a word', () => {
  it('does not keep a revoked token in force: token sync notices its listening connection is gone, and reads the tokens again', async () => {
    const url = await postgres().newDatabase();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    onTestFinished(() => pool.end());
    await ensureSchema(pool);
    await saveClusterTokens(pool, DEFAULT_PARTITION, GRANTS);
    const proxy = await flowDroppingProxy(Number(new URL(url).port));
    const seen: TokenGrant[][] = [];
    const sync = new TokenSync({ url: viaProxy(url, proxy.port), partition: DEFAULT_PARTITION, retryMs: 100, onGrants: (grants) => seen.push(grants), log: createLogger('silent') });
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
