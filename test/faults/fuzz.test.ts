import { io, type Socket } from 'socket.io-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { contract, type NamespaceName } from '../../shared/contract.ts';
import { ERROR_CODES } from '../../shared/errors.ts';
import { agent, control, tempDir, TOKENS } from '../helpers/hub.ts';
import { HubUnderTest } from './cluster.ts';

const TOKEN: Record<NamespaceName, string> = { control: TOKENS.admin, agent: TOKENS.agent, monitor: TOKENS.monitor };

/** A deterministic pseudo-random source, so a failing run can be replayed. */
function randomSource(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

function deep(levels: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < levels; i++) value = { nested: value };
  return value;
}

const GARBAGE: unknown[] = [
  null, 0, -1, 1.5, -0.5, 1e308, 2 ** 53 + 1, '', 'x', ' ', '../../etc/passwd', 'x'.repeat(20_000), '\u0000\uffff', true, false,
  [], [1, 2, 3], ['a', null], {}, { __proto__: { polluted: true } }, { constructor: 'x' }, deep(40), { a: deep(20) }, [[[[]]]],
  Array.from({ length: 5000 }, (_, i) => i), Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])),
  new Uint8Array([1, 2, 3]),
];

/** Payloads that the event's schema refuses: whole garbage, garbage per field, garbage everywhere, extra keys. */
function malformedPayloads(schema: z.ZodType, random: () => number): unknown[] {
  const keys = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
  const pick = () => GARBAGE[Math.floor(random() * GARBAGE.length)];
  const candidates: unknown[] = [...GARBAGE];
  for (const key of keys) for (const value of GARBAGE) candidates.push({ [key]: value });
  for (let i = 0; i < 60; i++) candidates.push(Object.fromEntries(keys.map((k) => [k, pick()])));
  for (let i = 0; i < 20; i++) candidates.push({ ...Object.fromEntries(keys.map((k) => [k, pick()])), [`extra${i}`]: pick() });
  // Judge each payload as the hub will receive it: through JSON (binary goes as it is).
  return candidates.filter((payload) => !schema.safeParse(payload instanceof Uint8Array ? payload : JSON.parse(JSON.stringify(payload) ?? 'null')).success);
}

function connect(url: string, namespace: NamespaceName): Promise<Socket> {
  const socket = io(`${url}/${namespace}`, { auth: { token: TOKEN[namespace] }, transports: ['websocket'], forceNew: true, reconnection: false });
  onTestFinished(() => void socket.disconnect());
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

describe('fuzzing every event', () => {
  it('answers at least 10,000 malformed packets with an error ack or a closed socket, changes nothing, and others carry on', async () => {
    const hub = await HubUnderTest.create(tempDir(), { rateLimit: { perSecond: 1e6, burst: 1_000_000 }, maxHttpBufferSize: 256 * 1024 });
    await hub.start();
    const admin = await control(hub);
    const target = await admin.createWorkflow({ id: 'target', userQuery: 'do not touch' });
    await target.start();
    const worker = await agent(hub, { agentId: 'bystander', agentType: 'w' });
    await worker.onTask('never-offered', () => undefined);
    await target.createWorkOrder({ id: 'queued', taskType: 'nobody-can-do-this' });
    const before = { workflow: await target.get(), agents: await admin.listAgents() };

    // A well-behaved client works on another workflow the whole time.
    const neighbour = await admin.createWorkflow({ id: 'neighbour', userQuery: 'keep working' });
    let neighbourOk = 0;
    let fuzzing = true;
    const neighbourLoop = (async () => {
      for (let i = 0; fuzzing; i++) {
        await neighbour.updateProgress('steady', i % 101);
        neighbourOk++;
      }
    })();

    const random = randomSource(20261201);
    const codes = new Map<string, number>();
    let sent = 0;
    let closed = 0;
    try {
      for (const namespace of ['control', 'agent', 'monitor'] as const) {
        const socket = await connect(hub.url, namespace);
        const events = Object.entries(contract[namespace]) as Array<[string, { request: z.ZodType }]>;
        const packets: Array<[string, unknown]> = [];
        for (const [event, spec] of events) for (const payload of malformedPayloads(spec.request, random)) packets.push([event, payload]);
        for (let i = 0; i < 200; i++) packets.push([`no.such.event.${i}`, GARBAGE[i % GARBAGE.length]]);
        for (let i = 0; i < packets.length; i += 250) {
          const batch = packets.slice(i, i + 250);
          const replies = await Promise.all(batch.map(([event, payload]) => socket.timeout(15_000).emitWithAck(event, payload)));
          for (const [index, reply] of replies.entries()) {
            expect(reply.ok, `${namespace} ${batch[index]![0]} ${JSON.stringify(batch[index]![1])?.slice(0, 200)}`).toBe(false);
            expect(Object.keys(ERROR_CODES)).toContain(reply.error.code);
            codes.set(reply.error.code, (codes.get(reply.error.code) ?? 0) + 1);
          }
          sent += replies.length;
        }
        socket.disconnect();
      }

      // Packets the hub cannot answer close their socket: no ack callback, a frame that is not a
      // socket.io packet, and a message larger than maxHttpBufferSize.
      const abuses: Array<(socket: Socket) => void> = [
        (s) => s.emit('workflow.create', { userQuery: 'no ack' }),
        (s) => (s.io.engine as unknown as { write(data: string): void }).write('4{not a socket.io packet'),
        (s) => s.emit('workflow.create', { userQuery: 'x'.repeat(400 * 1024) }, () => undefined),
      ];
      for (let round = 0; round < 10; round++) {
        for (const abuse of abuses) {
          const socket = await connect(hub.url, 'control');
          const gone = new Promise((resolve) => socket.once('disconnect', resolve));
          abuse(socket);
          await gone;
          closed++;
          sent++;
        }
      }

    } finally {
      fuzzing = false;
      await neighbourLoop;
    }
    const health = await fetch(`${hub.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await target.get()).toEqual(before.workflow);
    expect(await admin.listAgents()).toEqual(before.agents);
    expect(neighbourOk).toBeGreaterThan(0);
    expect(sent).toBeGreaterThanOrEqual(10_000);
    console.log(`fuzz: ${sent} malformed packets, ${closed} closed sockets, codes ${JSON.stringify(Object.fromEntries(codes))}, neighbour made ${neighbourOk} changes meanwhile`);
    expect(await hub.stop()).toBe(0);
  }, 180_000);
});
