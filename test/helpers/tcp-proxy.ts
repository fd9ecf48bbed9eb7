import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** A TCP proxy to a local port that can be cut off silently, as a network that drops packets does. */
export interface TcpProxy {
  port: number;
  /** From now on (until `blackhole(false)`) nothing passes either way, and no connection is closed or refused: reads and connects hang. */
  blackhole(on?: boolean): void;
  /** From now on (until `refuse(false)`) new connections are closed at once, as a port nobody listens on would refuse them. */
  refuse(on?: boolean): void;
  /**
   * Nothing passes any more on the connections open now, none is closed (as a NAT or a firewall
   * forgets a flow: no reset), while new ones pass; returns how many were open.
   */
  dropEstablished(): number;
  /** `url` (of the proxied port) with this proxy's port instead. */
  through(url: string): string;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 to `targetPort` there. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let dropping = false;
  let refusing = false;
  const sockets = new Set<Socket>();
  const dropped = new WeakSet<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };
  const forward = (from: Socket, to: Socket) => from.on('data', (chunk: Buffer) => void (dropping || dropped.has(from) || to.write(chunk)));
  const server = createServer((client) => {
    if (refusing) return void client.destroy();
    track(client);
    if (dropping) return;
    const upstream = connect(targetPort, '127.0.0.1');
    track(upstream);
    forward(client, upstream);
    forward(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    blackhole: (on = true) => {
      dropping = on;
    },
    refuse: (on = true) => {
      refusing = on;
    },
    dropEstablished: () => {
      for (const socket of sockets) dropped.add(socket);
      // Each connection is two sockets: the client's and the one upstream.
      return sockets.size / 2;
    },
    through: (url) => {
      const proxied = new URL(url);
      proxied.port = String(port);
      return proxied.toString();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
