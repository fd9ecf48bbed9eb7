import { EMPTY_ARRAY } from './empty-array.ts';

/** A document key (state.ts's DocKey, named here without importing it back). */
type DocKey = string;
type Path = ReadonlyArray<string | number>;

/** Keys written of an object: one, or an assign's fields object (its own keys). */
type WrittenKeys = string | Record<string, unknown>;
/** All the keys written of one object: a few as they came, many (a workflow's new orders) in a set. */
type KeysWritten = WrittenKeys | WrittenKeys[] | Set<string>;
/** Writes of one object listed before they go into a set: looking one up walks the list. */
const LISTED_WRITES = 8;

/** Whether `written` holds `key`. */
function wrote(written: KeysWritten, key: string): boolean {
  if (typeof written === 'string') return written === key;
  if (written instanceof Set) return written.has(key);
  if (!Array.isArray(written)) return Object.hasOwn(written, key);
  for (const keys of written) if (wrote(keys, key)) return true;
  return false;
}

/** Whether `written` holds one of the own keys of `fields`. */
function someWritten(written: KeysWritten, fields: Record<string, unknown>): boolean {
  for (const key in fields) if (Object.hasOwn(fields, key) && wrote(written, key)) return true;
  return false;
}

/** Adds `keys` to a set of keys written. */
function addKeys(set: Set<string>, keys: WrittenKeys): void {
  if (typeof keys === 'string') set.add(keys);
  else for (const key in keys) if (Object.hasOwn(keys, key)) set.add(key);
}

/**
 * Which documents a transaction wrote so that compactOps (folding too) could shorten their ops: a
 * key of an object written twice, or a write below a container written whole. Told of every
 * write, by object (no paths built or compared): a start or cancel of 100,000 orders writes half
 * a million ops at distinct paths, and compaction finding nothing to drop in them cost more than
 * the ops themselves. It may say yes where compactOps finds nothing (a key written, removed and
 * added again), never no where it would find something. Its maps and sets are made at first use.
 */
export class CompactableDocs {
  private docs: Set<DocKey> | undefined;
  private keysWritten: Map<object, KeysWritten> | undefined;
  private wholes: Set<object> | undefined;

  /** `rootOf` gives a document's root, looked up only once something was written whole. */
  constructor(private readonly rootOf: (doc: DocKey) => unknown) {}

  /** Whether `doc`'s ops may compact. */
  has(doc: DocKey): boolean {
    return this.docs?.has(doc) === true;
  }

  /**
   * `keys` of `parent`, the object at `depth` on `path` in `doc`, were written: one key, or an assign's fields object (its own keys, some perhaps skipped, which only
   * makes a repeat likelier).
   */
  wroteKeys(doc: DocKey, path: Path, depth: number, parent: object, keys: WrittenKeys): void {
    if (this.wroteBelow(doc, path, depth)) return;
    const written = (this.keysWritten ??= new Map());
    const before = written.get(parent);
    if (before === undefined) written.set(parent, keys);
    else if (typeof keys === 'string' ? wrote(before, keys) : someWritten(before, keys)) (this.docs ??= new Set()).add(doc);
    else if (before instanceof Set) addKeys(before, keys);
    else if (!Array.isArray(before)) written.set(parent, [before, keys]);
    else if (before.length < LISTED_WRITES) before.push(keys);
    else {
      const set = new Set<string>();
      for (const listed of before) addKeys(set, listed);
      addKeys(set, keys);
      written.set(parent, set);
    }
  }

  /** `value` was written whole (a container: what is written below it later folds into it). */
  wroteWhole(value: unknown): void {
    if (typeof value === 'object' && value !== null && value !== EMPTY_ARRAY) (this.wholes ??= new Set()).add(value);
  }

  /**
   * A write below the first `depth` + 1 containers on `path` in `doc` (its root, then each
   * segment's): true, and `doc` marked, when one of them was written whole, or `doc` already was.
   */
  wroteBelow(doc: DocKey, path: Path, depth: number): boolean {
    if (this.has(doc)) return true;
    const wholes = this.wholes;
    if (wholes === undefined) return false;
    let node = this.rootOf(doc);
    for (let i = 0; ; i++) {
      if (typeof node !== 'object' || node === null) return false;
      if (wholes.has(node)) {
        (this.docs ??= new Set()).add(doc);
        return true;
      }
      if (i === depth) return false;
      node = (node as Record<string, unknown>)[path[i] as string];
    }
  }
}
