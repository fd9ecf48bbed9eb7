import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { contract, type NamespaceName } from '../../shared/contract.ts';
import { ERROR_CODES } from '../../shared/errors.ts';
import { startHub, tempDir } from '../helpers/hub.ts';
import { errorRecorder } from '../helpers/http.ts';
import { connectRaw } from '../helpers/raw-socket.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Requests that end something others need: an attempt, an agent's willingness to work, the
 * workflow. Left out of the replay and fuzzed last, in this order, so the rest meet them alive.
 */
const LATE = ['agent.update', 'agent.status', 'task.complete', 'task.fail', 'workflow.complete', 'workflow.fail', 'workflow.cancel'];

type Seed = { namespace: NamespaceName; event: string; payload: Json };

/** Every request example of PROTOCOL.md, in document order, its `/srv/data/` files under `root`: well-formed seeds. */
function seeds(root: string): Seed[] {
  const protocol = readFileSync(fileURLToPath(new URL('../../PROTOCOL.md', import.meta.url)), 'utf8');
  return [...protocol.matchAll(/^```json (\w+):([\w.]+):request\n([\s\S]*?)^```$/gm)].map((m) => ({
    namespace: m[1] as NamespaceName,
    event: m[2]!,
    payload: JSON.parse(m[3]!.replaceAll('/srv/data/', `${root}/`)) as Json,
  }));
}

/** Values a well-formed payload may still carry: reserved names, traversal, odd URIs, escapes, extremes. */
function hostileValues(root: string): { strings: string[]; numbers: number[]; keys: string[] } {
  const strings = [
    'constructor', '__proto__', 'toString', 'hasOwnProperty', '', ' ', '42', '-1', '@agents', '*', 'a'.repeat(64), 'x'.repeat(5000),
    '../../etc/passwd', '/etc/passwd', '/proc/self/environ', '/dev/zero', '/', '.', root, join(root, 'data.csv'), join(root, 'missing', 'x.csv'),
    join(root, 'link.csv'), join(root, 'dir'), `file://${join(root, 'data.csv')}`, `file://localhost${root}/data.csv`, 'file://evil/etc/passwd',
    'file:///a%2Fb', 'file:///%E0%A4%A', 'file:///etc/passwd?x', 'file://', 's3://', 'https://[', '%E0%A4%A', '\u0000', '\ud800', '\u202e',
    'wf-sales', 'load-customers', 'customers', 'orders', 'clean', 'loader-1', 'q3Tz8bLw0Jk-',
  ];
  const numbers = [0, -0, -1, 0.5, 1, 99.999, 100, 101, 1000, 1001, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308];
  return { strings, numbers, keys: ['constructor', '__proto__', 'toString', 'x', '', 'a'.repeat(300)] };
}

/** Copies of `value`, each with one leaf, array or key replaced by a hostile one of the same kind. */
function mutants(value: Json, hostile: ReturnType<typeof hostileValues>): Json[] {
  if (typeof value === 'string') return hostile.strings;
  if (typeof value === 'number') return hostile.numbers;
  if (typeof value === 'boolean') return [!value];
  if (value === null) return [...hostile.strings.slice(0, 5), 0];
  if (Array.isArray(value)) {
    const out: Json[] = [[], [...value, ...value], [...value].reverse()];
    value.forEach((item, i) => {
      for (const changed of mutants(item, hostile)) out.push(value.map((other, j) => (j === i ? changed : other)));
    });
    return out;
  }
  const out: Json[] = [{}];
  for (const [key, item] of Object.entries(value)) {
    const { [key]: _, ...without } = value;
    out.push(without);
    for (const changed of mutants(item, hostile)) out.push({ ...value, [key]: changed });
    // A computed key makes even `__proto__` an own key, as JSON.parse does on the hub.
    for (const other of hostile.keys) out.push({ ...without, [other]: item });
  }
  return out;
}

const isObject = (value: Json): value is { [key: string]: Json } => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The payload without its `id` fields: every one a request carries is an optional id for what it
 * creates, and the example's is taken after the replay, so a mutant would stop at CONFLICT.
 */
function withoutIds(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutIds);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => key !== 'id').map(([key, item]) => [key, withoutIds(item)]));
}

/** An attempt the fuzz's own worker holds. */
type Attempt = { workflowId: string; workOrderId: string; attemptToken: string };

/** True for the reports an agent makes about an attempt it holds. */
function carriesAttempt(payload: Json): boolean {
  return isObject(payload) && ('attemptToken' in payload || 'attemptTokens' in payload);
}

/** The payload with a live attempt wherever it still carries the example's (a mutant may have changed them). */
function withAttempt(payload: Json, example: Json, attempt: Attempt): Json {
  if (!isObject(payload) || !isObject(example)) return payload;
  const out = { ...payload };
  for (const key of ['workflowId', 'workOrderId', 'attemptToken'] as const) if (key in out && out[key] === example[key]) out[key] = attempt[key];
  if ('attemptTokens' in out && JSON.stringify(out.attemptTokens) === JSON.stringify(example.attemptTokens)) out.attemptTokens = [attempt.attemptToken];
  return out;
}


describe('fuzzing every event with payloads its schema accepts', () => {
  it('answers thousands of well-formed but hostile requests with a result or an error that is never INTERNAL, and logs no error', async () => {
    const root = tempDir('switchboard-fuzz-data-');
    writeFileSync(join(root, 'data.csv'), 'a,b\n1,2\n');
    writeFileSync(join(root, 'customers.csv'), 'id,name\n1,Ada\n');
    mkdirSync(join(root, 'dir'));
    symlinkSync('/etc/passwd', join(root, 'link.csv'));
    const { logger, errors } = errorRecorder();
    const hub = await startHub({ dataRoots: [root], rateLimit: { perSecond: 1e6, burst: 1_000_000 } }, { logger });
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype);
    const hostile = hostileValues(root);
    const sockets = {} as Record<NamespaceName, Socket>;
    for (const namespace of Object.keys(contract) as NamespaceName[]) sockets[namespace] = await connectRaw(hub.url, namespace);

    const codes = new Map<string, number>();
    let sent = 0;
    const send = async (socket: Socket, { namespace, event, payload }: Seed): Promise<boolean> => {
      const reply = await socket.timeout(15_000).emitWithAck(event, payload);
      const code: string = reply.ok ? 'ok' : reply.error.code;
      const what = `${namespace} ${event} ${JSON.stringify(payload).slice(0, 300)} → ${reply.error?.message}`;
      expect([...Object.keys(ERROR_CODES), 'ok'], what).toContain(code);
      expect(code, what).not.toBe('INTERNAL');
      codes.set(code, (codes.get(code) ?? 0) + 1);
      sent++;
      return reply.ok;
    };

    // A worker of the fuzz's own, on a workflow no mutant names, holds live attempts for the
    // reports: a mutant of task.complete meets a running attempt, not just a stale token.
    await sockets.control.emitWithAck('workflow.create', { id: 'fuzz-work', userQuery: 'attempts for the fuzz' });
    await sockets.control.emitWithAck('workflow.start', { workflowId: 'fuzz-work' });
    const worker = await connectRaw(hub.url, 'agent');
    await worker.emitWithAck('agent.register', { agentId: 'fuzz-worker', agentType: 'fuzz', taskTypes: ['fuzz-work'], maxConcurrentTasks: 1000 });
    const pool: Attempt[] = [];
    let onOffer: () => void = () => undefined;
    worker.on('assignment', (offer: Attempt, ack: (reply: unknown) => void) => {
      pool.push({ workflowId: offer.workflowId, workOrderId: offer.workOrderId, attemptToken: offer.attemptToken });
      ack({ accept: true });
      onOffer();
    });
    const liveAttempt = async (): Promise<Attempt> => {
      if (pool.length === 0) {
        const next = new Promise<void>((resolve) => (onOffer = resolve));
        await sockets.control.emitWithAck('workOrder.create', { workflowId: 'fuzz-work', taskType: 'fuzz-work' });
        await next;
      }
      return pool.at(-1)!;
    };

    const fuzz = async (seed: Seed) => {
      const request = (contract[seed.namespace] as Record<string, { request: z.ZodType }>)[seed.event]!.request;
      const unique = new Map(mutants(withoutIds(seed.payload), hostile).map((payload) => [JSON.stringify(payload), payload]));
      // Only what the schema accepts: the malformed rest is the other fuzz test's business.
      const accepted = [...unique.values()].filter((payload) => request.safeParse(payload).success);
      if (!carriesAttempt(seed.payload)) {
        for (let i = 0; i < accepted.length; i += 100) {
          await Promise.all(accepted.slice(i, i + 100).map((payload) => send(sockets[seed.namespace], { ...seed, payload })));
        }
        return;
      }
      // One at a time, each with an attempt that is still running; a successful end uses it up.
      for (const payload of accepted) {
        const attempt = await liveAttempt();
        const ok = await send(worker, { ...seed, payload: withAttempt(payload, seed.payload, attempt) });
        if (ok && (seed.event === 'task.complete' || seed.event === 'task.fail')) pool.splice(pool.indexOf(attempt), 1);
      }
    };

    const all = seeds(root);
    const late = (seed: Seed) => LATE.indexOf(seed.event);
    const replay = all.filter((seed) => late(seed) === -1);
    // The examples first, one at a time and twice (some name what a later one creates), so the
    // workflow, its orders and data exist for the mutants.
    for (const seed of [...replay, ...replay]) await send(sockets[seed.namespace], seed);
    for (const seed of [...replay, ...all.filter((seed) => late(seed) !== -1).sort((a, b) => late(a) - late(b))]) await fuzz(seed);

    expect(errors).toEqual([]);
    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(prototypeBefore);
    expect((await fetch(`${hub.url}/healthz`)).status).toBe(200);
    expect(sent).toBeGreaterThanOrEqual(2500);
    console.log(`accepted fuzz: ${sent} requests, replies ${JSON.stringify(Object.fromEntries(codes))}`);
  }, 180_000);
});
