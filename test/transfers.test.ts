import { describe, expect, it, onTestFinished } from 'vitest';
import type { Socket } from 'socket.io';
import { Transfers } from '../server/transport/transfers.ts';
import { codeOf } from './helpers/errors.ts';

/** A socket as Transfers sees one: an id, and a disconnect event it never fires here. */
function socket(id: string): Socket {
  return { id, once: () => undefined } as unknown as Socket;
}

const body = (bytes: number) => [Buffer.alloc(bytes)];

describe('transfers (no network)', () => {
  it('hold a body shared by many readers once, and past their bound drop the oldest, whose reader is told NOT_FOUND', async () => {
    const transfers = new Transfers(1000);
    onTestFinished(() => transfers.close());
    const [a, b, c] = [socket('a'), socket('b'), socket('c')];
    const shared = body(600);
    const first = transfers.offer(a, shared);
    // The same body for a second reader costs nothing more: both stay.
    const second = transfers.offer(b, shared);
    expect(transfers.read(a, first.id, 0).length).toBe(600);
    // Another body of 600 bytes goes past the bound: the oldest transfer left (b's) goes.
    const third = transfers.offer(c, body(600));
    expect(await codeOf(Promise.resolve().then(() => transfers.read(b, second.id, 0)))).toBe('NOT_FOUND');
    expect(transfers.read(c, third.id, 0).length).toBe(600);
  });
});
