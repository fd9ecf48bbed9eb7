import { Socket } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { control, startHub } from './helpers/hub.ts';

/** Counts the TCP writes (system-call batches) of every socket whose `pick` holds, until the test ends. */
function countWrites(pick: (socket: Socket) => boolean): { count: number } {
  const counter = { count: 0 };
  const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const originals = { _write: proto._write, _writev: proto._writev };
  for (const name of ['_write', '_writev'] as const) {
    proto[name] = function counted(this: Socket, ...args: unknown[]) {
      if (pick(this)) counter.count++;
      return originals[name].apply(this, args);
    };
  }
  onTestFinished(() => {
    Object.assign(proto, originals);
  });
  return counter;
}

describe('batched writes', () => {
  it('sends requests made in one tick in at most two TCP writes from the SDK, and the hub acks them in as few', async () => {
    const hub = await startHub();
    const port = Number(new URL(hub.url).port);
    const client = await control(hub);
    const fromClient = countWrites((socket) => socket.remotePort === port);
    const fromHub = countWrites((socket) => socket.localPort === port);
    const created = await Promise.all(Array.from({ length: 10 }, (_, i) => client.createWorkflow({ userQuery: `batch ${i}` })));
    expect(new Set(created.map((wf) => wf.id)).size).toBe(10);
    // The first request leaves at once; the nine made while it was written leave together.
    expect(fromClient.count).toBe(2);
    expect(fromHub.count).toBeLessThanOrEqual(2);
  });
});
