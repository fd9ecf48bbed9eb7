import { describe, expect, it } from 'vitest';
import { applyPatch, compactOps, escapeSegment, fromPointer, toPointer, type PatchOp } from '../../shared/patch.ts';

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
});
