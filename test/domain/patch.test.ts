import { describe, expect, it } from 'vitest';
import { applyPatch, applyPatchAtomic, compactOps, escapeSegment, fromPointer, toPointer, type PatchOp } from '../../shared/patch.ts';

describe('JSON patch', () => {
  it('escapes and unescapes pointer segments (RFC 6901)', () => {
    expect(toPointer(['stages', 'data/loading', 'a~b'])).toBe('/stages/data~1loading/a~0b');
    expect(fromPointer('/stages/data~1loading/a~0b')).toEqual(['stages', 'data/loading', 'a~b']);
    expect(escapeSegment(3)).toBe('3');
  });

  it('applies add, replace and remove on objects and arrays, and replaces the root', () => {
    const doc = { a: { list: [1, 2] }, b: 1 };
    const out = applyPatch(doc, [
      { op: 'add', path: '/a/list/2', value: 3 },
      { op: 'remove', path: '/a/list/0' },
      { op: 'replace', path: '/b', value: 2 },
      { op: 'add', path: '/c', value: { x: 1 } },
    ]);
    expect(out).toEqual({ a: { list: [2, 3] }, b: 2, c: { x: 1 } });
    expect(applyPatch(undefined, [{ op: 'add', path: '', value: { fresh: true } }])).toEqual({ fresh: true });
    expect(() => applyPatch({}, [{ op: 'replace', path: '/missing', value: 1 }])).toThrow(/path not found/);
  });

  it('applies all of a patch or none of it: ops before one that fails are taken back', () => {
    const doc = { a: { list: [1, 2, 3], keep: 'k' }, b: 1, gone: 'g' };
    const before = structuredClone(doc);
    const ops: PatchOp[] = [
      { op: 'add', path: '/a/list/1', value: 9 },
      { op: 'remove', path: '/a/list/0' },
      { op: 'replace', path: '/a/list/2', value: 7 },
      { op: 'replace', path: '/b', value: 2 },
      { op: 'add', path: '/b', value: 3 },
      { op: 'add', path: '/c', value: { x: 1 } },
      { op: 'remove', path: '/gone' },
      { op: 'add', path: '', value: { root: true } },
      { op: 'add', path: '/root', value: false },
      { op: 'replace', path: '/missing/x', value: 1 },
    ];
    expect(() => applyPatchAtomic(doc, ops)).toThrow(/path not found/);
    expect(doc).toEqual(before);
    expect(applyPatchAtomic(doc, ops.slice(0, 7))).toEqual(applyPatch(structuredClone(before), ops.slice(0, 7)));
  });

  it('never writes through or into a prototype', () => {
    expect(() => applyPatch({}, [{ op: 'add', path: '/__proto__/polluted', value: true }])).toThrow(/path not found/);
    expect(() => applyPatch({}, [{ op: 'add', path: '/__proto__', value: { polluted: true } }])).toThrow(/__proto__/);
    expect(() => applyPatch({}, [{ op: 'add', path: '/constructor/prototype/polluted', value: true }])).toThrow(/path not found/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('compacts repeated replaces of one field into one op', () => {
    const ops: PatchOp[] = Array.from({ length: 100 }, (_, i) => ({ op: 'replace', path: '/workOrders/w1/progress', value: i }));
    expect(compactOps(ops)).toEqual([{ op: 'replace', path: '/workOrders/w1/progress', value: 99 }]);
  });

  it('never changes the result of a sequence (randomised against plain application)', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let trial = 0; trial < 300; trial++) {
      const base = () => ({ a: { x: 0, y: { z: 0 } }, b: { x: 0 }, list: [0, 1, 2] });
      const ops: PatchOp[] = [];
      const shadow = base();
      for (let i = 0; i < 30; i++) {
        const pick = random();
        let op: PatchOp;
        if (pick < 0.4) op = { op: 'replace', path: ['/a/x', '/b/x', '/a/y/z'][Math.floor(random() * 3)]!, value: i };
        else if (pick < 0.5) op = { op: 'replace', path: '/a/y', value: { z: -i } };
        else if (pick < 0.6) op = { op: 'replace', path: '/a', value: { x: i, y: { z: i } } };
        else if (pick < 0.7) op = { op: 'add', path: '/list/0', value: i };
        else if (pick < 0.8 && shadow.list.length > 1) op = { op: 'remove', path: '/list/0' };
        else op = { op: 'replace', path: `/list/${Math.floor(random() * shadow.list.length)}`, value: i };
        applyPatch(shadow, [op]);
        ops.push(op);
      }
      expect(applyPatch(base(), compactOps(structuredClone(ops)))).toEqual(applyPatch(base(), structuredClone(ops)));
    }
  });

  it('keeps a replace after a write of the whole document where it is', () => {
    const ops: PatchOp[] = [
      { op: 'replace', path: '/x', value: 1 },
      { op: 'replace', path: '', value: { x: 0, y: 1 } },
      { op: 'replace', path: '/x', value: 2 },
    ];
    expect(applyPatch({ x: 0 }, compactOps(ops))).toEqual({ x: 2, y: 1 });
  });

  it('folds the fields a command sets on something it created into the creating op', () => {
    const order = (id: string) => ({ id, state: 'pending', queuedAt: null, tags: ['a'] });
    const ops: PatchOp[] = [];
    for (const id of ['w1', 'w2']) {
      ops.push({ op: 'add', path: `/workOrders/${id}`, value: order(id) });
      ops.push({ op: 'replace', path: '/counts/pending', value: 1 });
    }
    for (const id of ['w1', 'w2']) {
      ops.push({ op: 'replace', path: `/workOrders/${id}/state`, value: 'queued' });
      ops.push({ op: 'replace', path: `/workOrders/${id}/queuedAt`, value: 5 });
      ops.push({ op: 'add', path: `/workOrders/${id}/tags/1`, value: 'b' });
    }
    const folded = compactOps(ops, { fold: true });
    expect(folded).toEqual([
      { op: 'add', path: '/workOrders/w1', value: { id: 'w1', state: 'queued', queuedAt: 5, tags: ['a', 'b'] } },
      { op: 'replace', path: '/counts/pending', value: 1 },
      { op: 'add', path: '/workOrders/w2', value: { id: 'w2', state: 'queued', queuedAt: 5, tags: ['a', 'b'] } },
    ]);
    // The ops given are not changed: they are the ones subscribers get.
    expect(ops[0]).toEqual({ op: 'add', path: '/workOrders/w1', value: order('w1') });
    const doc = () => ({ workOrders: {}, counts: { pending: 0 } });
    expect(applyPatch(doc(), folded)).toEqual(applyPatch(doc(), structuredClone(ops)));
  });

  it('does not fold into an array element that a later splice may have moved', () => {
    const ops: PatchOp[] = [
      { op: 'replace', path: '/list/1', value: { v: 10 } },
      { op: 'add', path: '/list/0', value: { v: 20 } },
      { op: 'replace', path: '/list/1/v', value: 30 },
    ];
    const doc = () => ({ list: [{ v: 0 }, { v: 1 }] });
    expect(applyPatch(doc(), compactOps(ops, { fold: true }))).toEqual({ list: [{ v: 20 }, { v: 30 }, { v: 10 }] });
  });

  it('never changes the result of a sequence when folding (randomised against plain application)', () => {
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pickOf = <T,>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
    let folds = 0;
    for (let trial = 0; trial < 400; trial++) {
      const base = () => ({ a: { x: 0, y: { z: 0 } }, items: {} as Record<string, unknown>, list: [{ v: 0 }, { v: 1 }] });
      const ops: PatchOp[] = [];
      let shadow = base();
      for (let i = 0; i < 40; i++) {
        const keys = Object.keys(shadow.items);
        const pick = random();
        let op: PatchOp;
        // Keys with `/` and `~` travel escaped (`~1`, `~0`).
        if (pick < 0.15) op = { op: 'add', path: `/items/${escapeSegment(pickOf(['k0', 'k1', 'a/b', 'c~d']))}`, value: { n: i, sub: { m: i }, arr: [i] } };
        else if (pick < 0.35 && keys.length) op = { op: 'replace', path: `/items/${escapeSegment(pickOf(keys))}/${pickOf(['n', 'sub/m'])}`, value: i };
        else if (pick < 0.42 && keys.length) op = { op: 'add', path: `/items/${escapeSegment(pickOf(keys))}/arr/0`, value: i };
        else if (pick < 0.47 && keys.length) op = { op: 'remove', path: `/items/${escapeSegment(pickOf(keys))}` };
        else if (pick < 0.52) op = { op: 'replace', path: '/a', value: { x: i, y: { z: i } } };
        else if (pick < 0.62) op = { op: 'replace', path: pickOf(['/a/x', '/a/y/z']), value: i };
        else if (pick < 0.67) op = { op: 'add', path: '/list/0', value: { v: i } };
        else if (pick < 0.72 && shadow.list.length > 1) op = { op: 'remove', path: '/list/0' };
        else if (pick < 0.76) op = { op: 'replace', path: `/list/${Math.floor(random() * shadow.list.length)}/v`, value: i };
        else if (pick < 0.8) op = { op: 'replace', path: `/list/${Math.floor(random() * shadow.list.length)}`, value: { v: -i } };
        else if (pick < 0.83) op = { op: 'replace', path: '', value: { ...base(), a: { x: -i, y: { z: -i } } } };
        else op = { op: 'replace', path: '/a/y', value: { z: -i } };
        shadow = applyPatch(shadow, [structuredClone(op)]);
        ops.push(op);
      }
      const given = structuredClone(ops);
      const folded = compactOps(ops, { fold: true });
      // Folding works on copies: the ops given (also what subscribers get) stay as they were.
      expect(ops).toEqual(given);
      // applyPatch keeps the values it adds, which later ops then change: each side gets its own copy.
      expect(applyPatch(base(), structuredClone(folded))).toEqual(applyPatch(base(), structuredClone(ops)));
      folds += ops.length - folded.length;
    }
    // The sequences do get shorter: the test is not passing by folding nothing.
    expect(folds).toBeGreaterThan(2000);
  });
});
