import { describe, expect, it } from 'vitest';
import { whyNotJson } from '../client-sdk/json-fit.ts';

describe('whyNotJson (what the TypeScript SDK refuses to send)', () => {
  it('names the first number JSON would write as null, and where', () => {
    expect(whyNotJson({ a: { b: [1, 2, Number.NEGATIVE_INFINITY] } })).toBe('a.b[2] is -Infinity, which JSON cannot hold (it would arrive as null)');
    expect(whyNotJson(Number.NaN)).toBe('the payload is NaN, which JSON cannot hold (it would arrive as null)');
    expect(whyNotJson([[1n]])).toBe('[0][0] is a BigInt, which JSON cannot hold');
  });

  it('takes what JSON carries as it is: values met twice that are no cycle, toJSON, binary data, inherited keys', () => {
    const shared = { x: 1 };
    expect(whyNotJson({ left: shared, right: shared, list: [shared, shared] })).toBeUndefined();
    expect(whyNotJson({ at: new Date(0), raw: Buffer.from([1]), bytes: new Uint8Array([2]), gone: undefined, f: () => 1 })).toBeUndefined();
    const child = Object.create({ inherited: Number.NaN }) as Record<string, unknown>;
    child.own = 'yes';
    expect(whyNotJson(child)).toBeUndefined();
    expect(JSON.stringify(child)).toBe('{"own":"yes"}');
  });

  it('names a cycle where it closes', () => {
    const list: unknown[] = [1];
    list.push({ again: list });
    expect(whyNotJson({ list })).toBe('list[1].again refers back to a value that holds it: JSON cannot hold a cycle');
  });
});
