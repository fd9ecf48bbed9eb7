import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';

/** A local port nothing listens on (bound once, then released): a URL that refuses, or where a hub starts later. */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
