/** What a TCP socket (net.Socket) offers to hold its writes and send them as one. */
export interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Runs `send` with `tcp` corked: ws writes each frame with a system call of its own, and the
 * frames `send` writes leave in one TCP write instead. The hub's acks and the SDK's packets share it.
 */
export function corked(tcp: Corkable, send: () => void): void {
  tcp.cork();
  try {
    send();
  } finally {
    tcp.uncork();
  }
}
