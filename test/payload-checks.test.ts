import { describe, expect, it } from 'vitest';
import { startHub } from './helpers/hub.ts';
import { connectRaw } from './helpers/raw-socket.ts';

// A hostile payload near maxHttpBufferSize used to make zod list every one of its 100,000 wrong
// values, holding the hub's loop for a second; the check now stops at the first ones (PROTOCOL.md).
const STOPPED = '; checking stopped there (over 5000 values)';

/** What is said of a key of `versions` that is not a document's name. */
const BAD_KEY = 'Invalid key in record: ids are 1-64 characters of letters, digits, _ . : - starting with a letter or digit';

/** `count` entries named by `name`, each worth `value`. */
const entries = <T>(count: number, name: (i: number) => string, value: T) => Object.fromEntries(Array.from({ length: count }, (_, i) => [name(i), value]));

describe('the checks of a payload', () => {
  async function setup() {
    const hub = await startHub();
    const c = await connectRaw(hub.url, 'control');
    const request = (event: string, payload: unknown) => c.emitWithAck(event, payload);
    expect(await request('workflow.create', { id: 'wf', userQuery: 'checks' })).toMatchObject({ ok: true });
    return { hub, request };
  }

  it('answers a record of 20,000 wrong keys with its first 100 and stops there; a small one with all its issues', async () => {
    const { hub } = await setup();
    const m = await connectRaw(hub.url, 'monitor');
    const many = await m.emitWithAck('subscribeAll', { versions: entries(20_000, (i) => `!${i}`, 1) });
    expect(many.ok).toBe(false);
    expect(many.error.code).toBe('VALIDATION');
    expect(many.error.issues).toHaveLength(100);
    expect(many.error.issues[99]).toEqual({ path: ['versions', '!99'], message: BAD_KEY });
    expect(many.error.message).toBe(`invalid subscribeAll payload: versions.!0: ${BAD_KEY}; versions.!1: ${BAD_KEY}; versions.!2: ${BAD_KEY}${STOPPED}`);
    // Wrong keys (and why) and a wrong value, in the order of the keys, as zod's record listed them.
    const few = await m.emitWithAck('subscribeAll', { versions: { '!a': 1, wf: -1, '!b': 1 } });
    expect(few.error.issues).toEqual([
      { path: ['versions', '!a'], message: BAD_KEY },
      { path: ['versions', 'wf'], message: 'Too small: expected number to be >=0' },
      { path: ['versions', '!b'], message: BAD_KEY },
    ]);
    expect(few.error.message.endsWith(`; versions.!b: ${BAD_KEY}`)).toBe(true);
    // A big valid record is still taken whole.
    expect(await m.emitWithAck('subscribeAll', { versions: entries(6000, (i) => `doc-${i}`, 0) })).toMatchObject({ ok: true });
  });

  it('answers a record of 20,000 wrong values with its first 100 and registers nothing', async () => {
    const { hub } = await setup();
    const a = await connectRaw(hub.url, 'agent');
    const reply = await a.emitWithAck('agent.register', { agentId: 'a1', agentType: 'w', labels: entries(20_000, (i) => `l${i}`, 7) });
    expect(reply.error.code).toBe('VALIDATION');
    expect(reply.error.issues).toHaveLength(100);
    expect(reply.error.issues[0]).toEqual({ path: ['labels', 'l0'], message: 'Invalid input: expected string, received number' });
    expect(reply.error.message).toMatch(new RegExp(`${STOPPED.replace(/[()]/g, '\\$&')}$`));
    const c = await connectRaw(hub.url, 'control');
    expect(await c.emitWithAck('agent.get', { agentId: 'a1' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    // Keys that are one once trimmed are still refused.
    const same = await a.emitWithAck('agent.register', { agentId: 'a1', agentType: 'w', labels: { zone: 'a', ' zone': 'b' } });
    expect(same.error).toMatchObject({ code: 'VALIDATION', issues: [{ path: ['labels', ' zone'], message: 'keys "zone" and " zone" are the same key once trimmed' }] });
  });

  it('refuses metadata of 60,000 keys by its size (16 KiB), before its keys, and records nothing', async () => {
    const { request } = await setup();
    const reply = await request('data.register', { workflowId: 'wf', id: 'd', path: 's3://b/d', metadata: entries(60_000, (i) => `k${i}`, 1) });
    expect(reply.error).toMatchObject({ code: 'VALIDATION', issues: [{ path: ['metadata'], message: 'metadata larger than 16384 bytes' }] });
    expect(await request('data.get', { workflowId: 'wf', dataId: 'd' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    // Under the bound it is taken, and a reserved key is still named.
    expect(await request('data.register', { workflowId: 'wf', id: 'd', path: 's3://b/d', metadata: entries(1000, (i) => `k${i}`, 1) })).toMatchObject({ ok: true });
    // Its keys count as the hub keeps them, trimmed: 16,384 bytes with them trimmed is taken.
    const text = 'x'.repeat(16_376);
    expect(Buffer.byteLength(JSON.stringify({ k: text }))).toBe(16_384);
    expect(await request('data.register', { workflowId: 'wf', id: 'f', path: 's3://b/f', metadata: { '  k  ': text } })).toMatchObject({ ok: true });
    const over = await request('data.register', { workflowId: 'wf', id: 'g', path: 's3://b/g', metadata: { k: `${text}x` } });
    expect(over.error).toMatchObject({ code: 'VALIDATION', issues: [{ path: ['metadata'], message: 'metadata larger than 16384 bytes' }] });
    const proto = await request('data.register', { workflowId: 'wf', id: 'e', path: 's3://b/e', metadata: JSON.parse('{"__proto__": 1}') });
    expect(proto.error).toMatchObject({ code: 'VALIDATION', issues: [{ path: ['metadata', '__proto__'] }] });
  });

  it('answers 1,000 orders whose inputs nest 17 levels with the first, and creates none', async () => {
    const { request } = await setup();
    let input: unknown = 1;
    for (let level = 0; level < 17; level++) input = [input];
    const orders = Array.from({ length: 1000 }, (_, i) => ({ id: `o${i}`, taskType: 't', input }));
    const reply = await request('workOrder.createMany', { workflowId: 'wf', orders });
    expect(reply.error).toEqual({
      code: 'VALIDATION',
      message: `invalid workOrder.createMany payload: orders.0.input: nesting deeper than 16 levels of arrays and objects${STOPPED}`,
      issues: [{ path: ['orders', 0, 'input'], message: 'nesting deeper than 16 levels of arrays and objects' }],
    });
    expect(await request('workOrder.list', { workflowId: 'wf' })).toMatchObject({ ok: true, data: { items: [] } });
    // Two such orders: both named, as before.
    const two = await request('workOrder.createMany', { workflowId: 'wf', orders: orders.slice(0, 2) });
    expect(two.error.issues.map((issue: { path: unknown[] }) => issue.path)).toEqual([
      ['orders', 0, 'input'],
      ['orders', 1, 'input'],
    ]);
  });
});
