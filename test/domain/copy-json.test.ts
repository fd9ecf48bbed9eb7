import { describe, expect, it } from 'vitest';
import { copyJson } from '../../server/domain/machinery/transaction.ts';

describe('copyJson', () => {
  it('copies deeply: the copy shares no object with the original', () => {
    const original = { id: 'wo_1', attempt: { number: 1, tags: ['a'] }, history: [{ number: 0 }], n: null };
    const copy = copyJson(original);
    expect(copy).toEqual(original);
    expect(copy.attempt).not.toBe(original.attempt);
    expect(copy.attempt.tags).not.toBe(original.attempt.tags);
    expect(copy.history[0]).not.toBe(original.history[0]);
    copy.attempt.tags.push('b');
    expect(original.attempt.tags).toEqual(['a']);
  });

  it('drops undefined fields at every depth, as JSON would', () => {
    const copy = copyJson({ a: 1, b: undefined, nested: { c: undefined, d: 2 } });
    expect(Object.keys(copy)).toEqual(['a', 'nested']);
    expect(Object.keys(copy.nested)).toEqual(['d']);
  });

  it('keeps an own `__proto__` key as data, never as the prototype', () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<string, unknown>;
    const copy = copyJson(parsed);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.hasOwn(copy, '__proto__')).toBe(true);
    const withUndefined = copyJson({ ...parsed, y: undefined });
    expect(Object.getPrototypeOf(withUndefined)).toBe(Object.prototype);
    expect(Object.keys(withUndefined)).toEqual(['__proto__', 'x']);
  });

  it('keeps the order of keys', () => {
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    expect(Object.keys(copyJson(Object.fromEntries(keys.map((k) => [k, 1]))))).toEqual(keys);
  });
});
