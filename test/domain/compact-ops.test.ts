import { describe, expect, it } from 'vitest';
import { applyPatch, compactOps, type PatchOp } from '../../shared/patch.ts';
import { referenceCompactOps } from './compact-ops-reference.ts';

type Json = unknown;
type Doc = Record<string, Json>;

/** Every path in `value` (pointers, the root's children down), with the value there. */
function paths(value: Json, base = ''): Array<{ path: string; value: Json }> {
  if (typeof value !== 'object' || value === null) return [];
  const out: Array<{ path: string; value: Json }> = [];
  const entries = Array.isArray(value) ? value.map((item, i) => [String(i), item] as const) : Object.entries(value);
  for (const [key, item] of entries) {
    const path = `${base}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    out.push({ path, value: item }, ...paths(item, path));
  }
  return out;
}

const KEYS = ['x', 'y', 'z', 'a/b', 'w~1', '0'];

/** A random sequence of valid ops on `base`, biased to paths written again and again, as a command's are. */
function randomOps(random: () => number, base: Doc, length: number): PatchOp[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const value = (i: number): Json => {
    const r = random();
    if (r < 0.5) return i;
    if (r < 0.7) return { x: i, y: { z: i } };
    if (r < 0.85) return [i, { x: i }];
    return null;
  };
  let shadow: Json = structuredClone(base);
  const ops: PatchOp[] = [];
  while (ops.length < length) {
    const all = paths(shadow);
    const containers = [{ path: '', value: shadow }, ...all].filter((p) => typeof p.value === 'object' && p.value !== null);
    const r = random();
    let op: PatchOp;
    if (r < 0.03) op = { op: 'replace', path: '', value: { x: ops.length, list: [1], o: { x: 1 } } };
    else if (r < 0.45 && all.length > 0) op = { op: 'replace', path: pick(all).path, value: value(ops.length) };
    else if (r < 0.8 && containers.length > 0) {
      const at = pick(containers);
      const key = Array.isArray(at.value) ? (random() < 0.5 ? '-' : String(Math.floor(random() * (at.value.length + 1)))) : pick(KEYS).replace(/~/g, '~0').replace(/\//g, '~1');
      op = { op: 'add', path: `${at.path}/${key}`, value: value(ops.length) };
    } else if (all.length > 0) op = { op: 'remove', path: pick(all).path };
    else continue;
    shadow = applyPatch(shadow, [structuredClone(op)]);
    ops.push(op);
  }
  return ops;
}

describe('compactOps against its previous implementation', () => {
  it('gives exactly the same ops, with and without fold, on random sequences, and changes none given', () => {
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const base = (): Doc => ({ x: 0, o: { x: 0, y: { z: 0 } }, list: [0, { x: 1 }], workOrders: { w1: { state: 'queued', tags: ['a'] } } });
    let folded = 0;
    for (let trial = 0; trial < 400; trial++) {
      const ops = randomOps(random, base(), 5 + Math.floor(random() * 60));
      const given = structuredClone(ops);
      for (const fold of [false, true]) {
        const compacted = compactOps(ops, { fold });
        expect(compacted).toEqual(referenceCompactOps(structuredClone(given), { fold }));
        expect(applyPatch(base(), structuredClone(compacted))).toEqual(applyPatch(base(), structuredClone(given)));
        if (compacted.length < ops.length) folded++;
      }
      expect(ops).toEqual(given);
    }
    // The sequences do exercise compaction and folding, not only pass-through.
    expect(folded).toBeGreaterThan(200);
  });

  it('folds a big command as before: orders created then queued, counts set again and again', () => {
    const ops: PatchOp[] = [];
    for (let i = 0; i < 200; i++) {
      ops.push({ op: 'add', path: `/workOrders/w${i}`, value: { id: `w${i}`, state: 'pending', waiting: null, tags: [] } });
      ops.push({ op: 'replace', path: '/workOrderCounts/pending', value: i + 1 });
    }
    for (let i = 0; i < 200; i++) {
      ops.push({ op: 'replace', path: `/workOrders/w${i}/state`, value: 'queued' });
      ops.push({ op: 'replace', path: '/workOrderCounts/pending', value: 199 - i });
      ops.push({ op: 'replace', path: '/workOrderCounts/queued', value: i + 1 });
      ops.push({ op: 'add', path: `/workOrders/w${i}/tags/0`, value: 'a' });
      ops.push({ op: 'replace', path: '/updatedAt', value: i });
    }
    for (const fold of [false, true]) expect(compactOps(ops, { fold })).toEqual(referenceCompactOps(ops, { fold }));
    expect(compactOps(ops, { fold: true })).toHaveLength(203);
  });
});
