import { describe, expect, it } from 'vitest';
import { boundedJson, jsonStringBytes } from '../shared/schemas/common.ts';
import { startHub } from './helpers/hub.ts';
import { connectRaw } from './helpers/raw-socket.ts';

/** Values of every kind JSON has, with escapes, non-ASCII text, surrogate pairs and a lone surrogate. */
const SAMPLES: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  -12.5e-7,
  1e21,
  123456789012345,
  '',
  'plain',
  'quote " and \\ backslash\n\t\u0001\u001f',
  'é€😀 and \ud800 alone',
  [],
  {},
  [1, 'two', [3, { four: 4 }], null],
  { 'ké"y': ['v', { nested: { deeper: [true, false, 1.5] } }], empty: {}, list: [] },
];

describe('the size of a free JSON value', () => {
  it('is its size as JSON.stringify writes it, in UTF-8 bytes, to the byte', () => {
    for (const value of SAMPLES) {
      const size = Buffer.byteLength(JSON.stringify(value));
      expect([value, boundedJson(size).safeParse(value).success, boundedJson(size - 1).safeParse(value).success]).toEqual([value, true, false]);
    }
    for (const text of SAMPLES.filter((value): value is string => typeof value === 'string')) expect(jsonStringBytes(text)).toBe(Buffer.byteLength(JSON.stringify(text)));

  });
});

// PROTOCOL.md: free JSON values "may nest at most 16 levels of arrays and objects".
describe('the nesting bound of a free JSON value', () => {
  /** `levels` arrays and objects, alternating, each holding the next; the innermost holds `inner`, or nothing. */
  function nested(levels: number, inner?: unknown): unknown {
    let value: unknown = inner === undefined ? [] : [inner];
    for (let level = 1; level < levels; level++) value = level % 2 ? { next: value } : [value];
    return value;
  }

  it('takes 16 levels of arrays and objects and refuses 17, whether the innermost is empty or not', () => {
    const schema = boundedJson(65_536);
    expect([nested(16), nested(16, 'leaf'), nested(16, 0)].map((value) => schema.safeParse(value).success)).toEqual([true, true, true]);
    for (const value of [nested(17), nested(17, 'leaf'), nested(16, {}), nested(16, [])]) {
      expect(schema.safeParse(value).error?.issues[0]?.message).toBe('nesting deeper than 16 levels of arrays and objects');
    }
  });
});

// PROTOCOL.md: work order `input` is "any JSON up to 256 KiB", a step's `result` and progress `details` "any JSON up to 64 KiB".
describe('the documented size bounds of free JSON values', () => {
  async function setup() {
    const hub = await startHub();
    const c = await connectRaw(hub.url, 'control');
    const request = (event: string, payload: unknown) => c.emitWithAck(event, payload);
    expect(await request('workflow.create', { id: 'wf', userQuery: 'sizes' })).toMatchObject({ ok: true });
    expect(await request('workflow.start', { workflowId: 'wf' })).toMatchObject({ ok: true });
    return request;
  }

  it('takes a work order input of 80 KB of JSON (under 256 KiB)', async () => {
    const request = await setup();
    const input = new Array(40_000).fill(0);
    expect(Buffer.byteLength(JSON.stringify(input))).toBeLessThan(100_000);
    const reply = await request('workOrder.create', { workflowId: 'wf', id: 'w', taskType: 't', input });
    expect(reply.error?.message ?? 'accepted').toBe('accepted');
    expect(reply).toMatchObject({ ok: true });
  });

  it('takes a step result of 20 KB of JSON (under 64 KiB)', async () => {
    const request = await setup();
    expect(await request('step.add', { workflowId: 'wf', id: 's', name: 'step', start: true })).toMatchObject({ ok: true });
    const result = new Array(10_000).fill(1);
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThan(25_000);
    const reply = await request('step.complete', { workflowId: 'wf', stepId: 's', result });
    expect(reply.error?.message ?? 'accepted').toBe('accepted');
  });

  it('refuses a work order input of 600 KB of JSON (over 256 KiB) and creates nothing', async () => {
    const request = await setup();
    const input = { text: '€'.repeat(200_000) };
    expect(Buffer.byteLength(JSON.stringify(input))).toBeGreaterThan(262_144);
    const reply = await request('workOrder.create', { workflowId: 'wf', id: 'big', taskType: 't', input });
    expect(reply).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(await request('workOrder.get', { workflowId: 'wf', workOrderId: 'big' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });
});
