import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { contract } from '../../shared/contract.ts';
import { ERROR_CODES } from '../../shared/errors.ts';
import { agent, control, startHub, tempDir, TOKENS } from '../helpers/hub.ts';
import { errorRecorder, rawRequest } from '../helpers/http.ts';
import { connectRaw } from '../helpers/raw-socket.ts';
import { HubUnderTest } from './cluster.ts';


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


describe('fuzzing every event', () => {
  it('answers at least 10,000 malformed packets with an error ack (never INTERNAL) or a closed socket, changes nothing, and others carry on', async () => {
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
        const socket = await connectRaw(hub.url, namespace);
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
            expect(reply.error.code, `${namespace} ${batch[index]![0]} ${JSON.stringify(batch[index]![1])?.slice(0, 200)}`).not.toBe('INTERNAL');
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
          const socket = await connectRaw(hub.url, 'control');
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
    // Nothing the hub could not explain: no handler failed (they are logged at level error, 50).
    expect(hub.current!.output()).not.toContain('"level":50');
    console.log(`fuzz: ${sent} malformed packets, ${closed} closed sockets, codes ${JSON.stringify(Object.fromEntries(codes))}, neighbour made ${neighbourOk} changes meanwhile`);
    expect(await hub.stop()).toBe(0);
  }, 180_000);
});

/** Path segments the HTTP fuzz strings together: real ones, malformed escapes, reserved and odd names. */
const SEGMENTS = [
  'api', 'workflows', 'agents', 'target', 'summary', 'data', 'report.json', 'report.md', 'report.html', 'report.xml', 'healthz', 'metrics',
  '%E0%A4%A', '%', '%Z', '%ZZ', '%00', '%2F', '%2e%2e', '..', '.', '', 'constructor', '__proto__', '%5F%5Fproto%5F%5F', 'toString',
  '%F0%9F%98%80', '%C0%AF', '%ED%A0%80', 'x'.repeat(3000), ';', '@agents', 'socket.io',
];
const QUERY_KEYS = ['status', 'limit', 'cursor', 'token', 'dataType', 'tag', 'tags', 'text', 'agentId', 'workOrderId', 'source', 'sort', 'order', 'createdAfter', 'createdBefore', '%E0', '__proto__'];
const QUERY_VALUES = ['', '%', '%E0%A4%A', '%00', 'NaN', '-1', '0', '1e999', '1.5', 'x'.repeat(9000), '2026-13-45', '2026-01-01', 'asc', 'size', 'pending', 'constructor', '__proto__', '!!!', 'eyJ4IjoxfQ', ',,,'];
/** Request targets no route pattern could produce. */
const ODD_TARGETS = ['//[', '//[/api/workflows', 'http://x:99999/healthz', 'http://[::1/', '*', '/?%', '//', '///api//workflows', '/api/workflows/?limit=1&limit=2', '/api/workflows/target/data?tag=a&tag=&tags=,'];

describe('fuzzing HTTP', () => {
  it('answers thousands of malformed requests (bad escapes, odd paths, bad query values) without a 500 or INTERNAL, and logs no error', async () => {
    const { logger, errors } = errorRecorder();
    const hub = await startHub({}, { logger });
    const admin = await control(hub);
    await admin.createWorkflow({ id: 'target', userQuery: 'do not touch' });
    const random = randomSource(20261202);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const tokens = [TOKENS.admin, TOKENS.monitor, TOKENS.agent, undefined, 'not-a-token'];
    const requests: Array<[method: string, target: string, token: string | undefined]> = ODD_TARGETS.map((target) => ['GET', target, TOKENS.admin]);
    for (let i = 0; i < 1500; i++) {
      const path = '/' + Array.from({ length: 1 + Math.floor(random() * 5) }, () => pick(SEGMENTS)).join('/');
      const query = Array.from({ length: Math.floor(random() * 4) }, () => `${pick(QUERY_KEYS)}=${pick(QUERY_VALUES)}`).join('&');
      requests.push([pick(['GET', 'GET', 'GET', 'POST', 'HEAD', 'DELETE']), query ? `${path}?${query}` : path, pick(tokens)]);
    }
    // Well-formed paths with a reader's token and bad query values reach every handler, not just the router.
    for (const route of ['/api/workflows', '/api/workflows/target/data', '/api/workflows/target/summary', '/api/workflows/target/report.md', '/api/agents', '/metrics']) {
      for (const key of QUERY_KEYS) for (const value of QUERY_VALUES) requests.push(['GET', `${route}?${key}=${value}`, pick([TOKENS.admin, TOKENS.monitor])]);
    }
    const statuses = new Map<number, number>();
    for (let i = 0; i < requests.length; i += 50) {
      const batch = requests.slice(i, i + 50);
      const replies = await Promise.all(batch.map(([method, target, token]) => rawRequest(hub.url, method, target, token)));
      for (const [index, reply] of replies.entries()) {
        const [method, target] = batch[index]!;
        const code = reply.body.startsWith('{') ? (JSON.parse(reply.body) as { error?: { code: string } }).error?.code : undefined;
        expect(reply.status >= 500 || code === 'INTERNAL', `${method} ${target.slice(0, 200)} → ${reply.status} ${code}`).toBe(false);
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      }
    }
    expect(errors).toEqual([]);
    expect((await fetch(`${hub.url}/healthz`)).status).toBe(200);
    expect((await admin.workflow('target').get()).status).toBe('pending');
    expect(requests.length).toBeGreaterThanOrEqual(3000);
    console.log(`http fuzz: ${requests.length} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  }, 120_000);
});
