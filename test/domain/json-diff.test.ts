import { describe, expect, it } from 'vitest';
import { diffJson } from '../../shared/json-diff.ts';
import { applyPatch } from '../../shared/patch.ts';

/** A seeded generator of numbers in [0, 1), so a failure replays. */
function seeded(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

/** A random JSON value, with keys that need escaping now and then. */
function randomJson(random: () => number, depth = 0): unknown {
  const pick = random();
  if (depth > 3 || pick < 0.3) return [null, true, 1, 2.5, 'x', ''][Math.floor(random() * 6)];
  if (pick < 0.45) return Array.from({ length: Math.floor(random() * 4) }, () => randomJson(random, depth + 1));
  const keys = ['a', 'b', 'c/d', 'e~f', '0', '1'];
  return Object.fromEntries(keys.filter(() => random() < 0.5).map((key) => [key, randomJson(random, depth + 1)]));
}

describe('JSON diff (domain)', () => {
  it('turns one value into the other: added, removed and changed keys, nested', () => {
    const before = { a: 1, gone: true, nested: { keep: 'x', change: 2 } };
    const after = { a: 1, nested: { keep: 'x', change: 3, fresh: [1] } };
    expect(diffJson(before, after)).toEqual([
      { op: 'remove', path: '/gone' },
      { op: 'replace', path: '/nested/change', value: 3 },
      { op: 'add', path: '/nested/fresh', value: [1] },
    ]);
  });

  it('replaces an array that differs whole, and sends nothing for equal values', () => {
    expect(diffJson({ ids: ['b', 'a'] }, { ids: ['c', 'b', 'a'] })).toEqual([{ op: 'replace', path: '/ids', value: ['c', 'b', 'a'] }]);
    expect(diffJson({ ids: ['a', { x: 1 }], n: null }, { n: null, ids: ['a', { x: 1 }] })).toEqual([]);
  });

  it('escapes keys as JSON Pointer segments', () => {
    expect(diffJson({}, { 'a/b': 1, 'c~d': 2 })).toEqual([
      { op: 'add', path: '/a~1b', value: 1 },
      { op: 'add', path: '/c~0d', value: 2 },
    ]);
  });

  it('gives a patch that, applied to a copy of the first of two random values, yields the second', () => {
    const random = seeded(3);
    for (let i = 0; i < 500; i++) {
      const before = { root: randomJson(random) };
      const after = { root: randomJson(random) };
      const applied = applyPatch(structuredClone(before), diffJson(before, after));
      expect(applied).toEqual(after);
    }
  });
});
