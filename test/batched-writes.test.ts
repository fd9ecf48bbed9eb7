import { Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { control, startHub } from './helpers/hub.ts';

/** Counts the TCP writes (system-call batches) on either end of connections to `port`, until the test ends. */
function countWrites(port: number): { fromClient: number; fromHub: number } {
  const counts = { fromClient: 0, fromHub: 0 };
  const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const originals = { _write: proto._write, _writev: proto._writev };
  for (const name of ['_write', '_writev'] as const) {
    proto[name] = function counted(this: Socket, ...args: unknown[]) {
      if (this.remotePort === port) counts.fromClient++;
      if (this.localPort === port) counts.fromHub++;
      return originals[name].apply(this, args);
    };
  }
  onTestFinished(() => {
    Object.assign(proto, originals);
  });
  return counts;
}

describe('batched writes', () => {
  it('sends requests made in one tick in at most two TCP writes from the SDK, and the hub acks them in as few', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const writes = countWrites(Number(new URL(hub.url).port));
    // Reads go one to a message (a batch would hold their answers together): ten packets.
    const pages = await Promise.all(Array.from({ length: 10 }, () => client.listWorkflows()));
    expect(pages).toHaveLength(10);
    // The first request leaves at once; the nine made while it was written leave together.
    expect(writes.fromClient).toBe(2);
    expect(writes.fromHub).toBeLessThanOrEqual(2);
  });
});
