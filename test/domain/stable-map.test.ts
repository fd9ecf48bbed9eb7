import { describe, expect, it } from 'vitest';
import { StableMap } from '../../server/domain/machinery/stable-map.ts';
import { random as seeded } from '../helpers/random.ts';

describe('StableMap', () => {
  it('answers as a Map does through random sets and deletes of a few keys among many, rebuilds included', () => {
    const random = seeded(7);
    const stable = new StableMap<string, number | undefined>();
    const plain = new Map<string, number | undefined>();
    for (let step = 0; step < 20_000; step++) {
      // Mostly a handful of keys that come and go; sometimes one of many that may never come back.
      const key = random() < 0.8 ? `hot-${Math.floor(random() * 4)}` : `cold-${Math.floor(random() * 500)}`;
      if (random() < 0.5) {
        const value = random() < 0.1 ? undefined : step;
        stable.set(key, value);
        plain.set(key, value);
      } else expect(stable.delete(key)).toBe(plain.delete(key));
      expect(stable.get(key)).toBe(plain.get(key));
      expect(stable.has(key)).toBe(plain.has(key));
      expect(stable.size).toBe(plain.size);
    }
    expect(new Map(stable)).toEqual(plain);
    expect(new Set(stable.keys())).toEqual(new Set(plain.keys()));
    expect([...stable.values()].sort()).toEqual([...plain.values()].sort());
    stable.clear();
    expect([stable.size, [...stable]]).toEqual([0, []]);
  });

  it('iterates keys in the order they were first set, a key set again keeping its place', () => {
    const map = new StableMap<string, number>().set('a', 1).set('b', 2).set('c', 3);
    map.delete('a');
    map.set('a', 4);
    expect([...map]).toEqual([['a', 4], ['b', 2], ['c', 3]]);
  });
});
