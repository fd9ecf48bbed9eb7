import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { io, type Socket } from 'socket.io-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { control, startHub, TOKENS } from '../helpers/hub.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use after a full collection, in bytes. */
function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** A bare socket.io connection (no reconnection), closed when the test ends. */
async function rawSocket(url: string, namespace: string, token: string | undefined, transports: string[] = ['websocket']): Promise<Socket> {
  const socket = io(`${url}/${namespace}`, { auth: token === undefined ? {} : { token }, transports, forceNew: true, reconnection: false });
  onTestFinished(() => void socket.disconnect());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

/** Stops reading the connection's TCP socket: the hub's writes pile up once the kernel's buffers are full. */
function stopReading(socket: Socket): { resume(): void } {
  const tcp = (socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket;
  tcp.pause();
  return { resume: () => tcp.resume() };
}

describe('a client that sends requests and never reads the answers', () => {
  it('cannot make the hub hold its answers without bound; others still get answers', async () => {
    // Unread answers: reading stops past 8 MiB, the connection closes past 4 × 8 MiB.
    const hub = await startHub({ maxUnreadBytes: 8 * 1024 * 1024 });
    const admin = await control(hub);
    // A workflow of about 700 KB: one workflow.get answer is that big (inline, under 1 MB).
    const wf = await admin.createWorkflow({ id: 'big', userQuery: 'big answers' });
    for (let i = 0; i < 80; i++) await wf.addObjective({ name: `o${i}`, description: 'x'.repeat(9000) });

    const hostile = await rawSocket(hub.url, 'control', TOKENS.admin);
    const reading = stopReading(hostile);
    const before = heapUsed();
    const closed = new Promise((done) => hostile.once('disconnect', done));
    // 600 requests, well within the rate limit's burst: about 420 MB of answers if all were held.
    for (let i = 0; i < 600; i++) {
      hostile.emit('workflow.get', { workflowId: 'big' }, () => undefined);
      if (i % 50 === 49) await sleep(20);
    }
    await sleep(1000);
    const grown = heapUsed() - before;

    // A well-behaved client is answered meanwhile.
    expect((await wf.summary({ timeoutMs: 10_000 })).id).toBe('big');
    console.log(`unread answers: heap grew ${(grown / 1e6).toFixed(0)} MB`);
    expect(grown).toBeLessThan(60e6);
    // It is closed: the hub let go of what it would not read.
    reading.resume();
    await closed;
  }, 60_000);

  it('over HTTP long-polling, never polling for the answers, cannot either', async () => {
    const hub = await startHub();
    const admin = await control(hub);
    const wf = await admin.createWorkflow({ id: 'big', userQuery: 'big answers' });
    for (let i = 0; i < 80; i++) await wf.addObjective({ name: `o${i}`, description: 'x'.repeat(9000) });

    // An engine.io session by hand: open it, join /control, then only ever POST requests.
    const open = await (await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling`)).text();
    const { sid } = JSON.parse(open.slice(1)) as { sid: string };
    const post = (body: string) => fetch(`${hub.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body }).then((r) => r.text());
    expect(await post(`40/control,${JSON.stringify({ token: TOKENS.admin })}`)).toBe('ok');
    await sleep(100);
    const before = heapUsed();
    let refused = 0;
    for (let i = 0; i < 12; i++) {
      // 50 requests per POST (engine.io separates packets with 0x1e): about 35 MB of answers each.
      const packets = Array.from({ length: 50 }, (_, j) => `42/control,${i * 50 + j}["workflow.get",{"workflowId":"big"}]`);
      if ((await post(packets.join('\x1e'))) !== 'ok') refused++;
      await sleep(20);
    }
    await sleep(1000);
    const grown = heapUsed() - before;
    expect((await wf.summary({ timeoutMs: 10_000 })).id).toBe('big');
    console.log(`unread polling answers: heap grew ${(grown / 1e6).toFixed(0)} MB; ${refused} POSTs refused`);
    expect(grown).toBeLessThan(100e6);
    // The session is gone: a poll for its answers is refused.
    expect((await fetch(`${hub.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`)).status).toBe(400);
  }, 60_000);
});
