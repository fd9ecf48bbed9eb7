/** What a deleted key's entry holds until the next compaction. */
const GONE: unique symbol = Symbol('gone');

/**
 * A Map whose deleted keys keep their entry until as many entries are gone as are left. V8 leaves
 * a deleted entry in its hash chain until the table is rebuilt, and a key deleted and set again
 * adds one more each time: a few keys that come and go among thousands that stay (an agent busy
 * then free among idle ones, a workflow's queue emptied and filled among waiting ones) made every
 * lookup of them walk thousands of dead entries (12 µs a set, get and delete beside 5,000 other
 * keys, against 0.01 µs here). Iterates in the order keys were first set.
 */
export class StableMap<K, V> implements Iterable<[K, V]> {
  private map = new Map<K, V | typeof GONE>();
  private live = 0;

  get size(): number {
    return this.live;
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    return value === GONE ? undefined : value;
  }

  has(key: K): boolean {
    const value = this.map.get(key);
    return value !== GONE && (value !== undefined || this.map.has(key));
  }

  set(key: K, value: V): this {
    const was = this.map.get(key);
    const known = was !== undefined || this.map.has(key);
    if (!known || was === GONE) {
      // Rebuilt once the dead outnumber the living (keys that never come back cost O(1) each, amortised);
      // at a new key, as a Map grows, not at a delete, which a walk of the entries may be making.
      if (!known && this.map.size > 2 * this.live + 64) this.map = new Map(this.entries());
      this.live++;
    }
    this.map.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (!this.has(key)) return false;
    this.map.set(key, GONE);
    this.live--;
    return true;
  }

  clear(): void {
    this.map = new Map();
    this.live = 0;
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [key, value] of this.map) if (value !== GONE) yield [key, value];
  }

  *keys(): IterableIterator<K> {
    for (const [key, value] of this.map) if (value !== GONE) yield key;
  }

  *values(): IterableIterator<V> {
    for (const value of this.map.values()) if (value !== GONE) yield value;
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}
