/**
 * RFC 6902 JSON Patch, the subset the hub emits: `add`, `remove` and `replace`.
 * The same operations go to the journal, to subscribers and into the SDK's mirror.
 */
export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** Encodes one path segment as RFC 6901 requires (`~` → `~0`, `/` → `~1`). */
export function escapeSegment(segment: string | number): string {
  const text = String(segment);
  return text.includes('~') || text.includes('/') ? text.replace(/~/g, '~0').replace(/\//g, '~1') : text;
}

/** Builds a JSON Pointer from path segments. */
export function toPointer(path: ReadonlyArray<string | number>): string {
  let pointer = '';
  for (const segment of path) pointer += '/' + escapeSegment(segment);
  return pointer;
}

/** Splits a JSON Pointer into its unescaped segments. */
export function fromPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (pointer[0] !== '/') throw new Error(`invalid JSON pointer: ${pointer}`);
  const segments = pointer.slice(1).split('/');
  // Escapes are rare: leave the common path without a second array.
  return pointer.includes('~') ? segments.map(unescapeSegment) : segments;
}

/** Decodes one RFC 6901 path segment. */
function unescapeSegment(segment: string): string {
  return segment.includes('~') ? segment.replace(/~1/g, '/').replace(/~0/g, '~') : segment;
}

type Container = Record<string, unknown> | unknown[];

function isContainer(value: unknown): value is Container {
  return typeof value === 'object' && value !== null;
}

function arrayIndex(array: unknown[], segment: string, forInsert: boolean): number {
  if (forInsert && segment === '-') return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(segment)) throw new Error(`invalid array index: ${segment}`);
  const index = Number(segment);
  if (index > array.length || (!forInsert && index === array.length)) throw new Error(`array index out of range: ${segment}`);
  return index;
}

/** How to take back one applied op: what its parent held at the key before it. */
interface Undo {
  parent: Container | undefined;
  key: string | number;
  op: PatchOp['op'];
  had: boolean;
  old: unknown;
}

/**
 * Applies operations in order, mutating `document` in place, and returns the resulting root
 * (a new value when an operation targets the root path `""`). Throws on a path that does not
 * exist, as RFC 6902 requires; with `undo`, what each applied op replaced is pushed to it.
 */
export function applyPatch<T>(document: T, ops: readonly PatchOp[], undo?: Undo[]): T {
  let root: unknown = document;
  for (const op of ops) {
    const path = op.path;
    if (path === '') {
      undo?.push({ parent: undefined, key: '', op: op.op, had: true, old: root });
      if (op.op === 'remove') root = undefined;
      else root = op.value;
      continue;
    }
    if (path[0] !== '/') throw new Error(`invalid JSON pointer: ${path}`);
    // Walks the pointer in place (no array of segments): replaying a journal applies millions of ops.
    let parent: unknown = root;
    let from = 1;
    for (let slash = path.indexOf('/', from); slash !== -1; slash = path.indexOf('/', from)) {
      const segment = unescapeSegment(path.slice(from, slash));
      // Own properties only: a patch never reaches into (or replaces) a prototype.
      if (!isContainer(parent) || (!Array.isArray(parent) && !Object.hasOwn(parent, segment))) throw new Error(`path not found: ${path}`);
      parent = Array.isArray(parent) ? parent[arrayIndex(parent, segment, false)] : parent[segment];
      from = slash + 1;
    }
    if (!isContainer(parent)) throw new Error(`path not found: ${path}`);
    const key = unescapeSegment(path.slice(from));
    if (key === '__proto__') throw new Error(`refusing to write __proto__: ${path}`);
    if (Array.isArray(parent)) {
      const index = arrayIndex(parent, key, op.op === 'add');
      undo?.push({ parent, key: index, op: op.op, had: op.op !== 'add', old: parent[index] });
      if (op.op === 'add') parent.splice(index, 0, op.value);
      else if (op.op === 'replace') parent[index] = op.value;
      else parent.splice(index, 1);
    } else {
      const had = Object.hasOwn(parent, key);
      if (op.op !== 'add' && !had) throw new Error(`path not found: ${op.path}`);
      undo?.push({ parent, key, op: op.op, had, old: parent[key] });
      if (op.op === 'remove') delete parent[key];
      else parent[key] = op.value;
    }
  }
  return root as T;
}

/**
 * applyPatch, all or nothing: when an op throws, the ops before it are taken back (a removed key
 * comes back last among its object's keys) and `document` is as it was.
 */
export function applyPatchAtomic<T>(document: T, ops: readonly PatchOp[]): T {
  const undo: Undo[] = [];
  try {
    return applyPatch(document, ops, undo);
  } catch (error) {
    for (let i = undo.length - 1; i >= 0; i--) {
      const { parent, key, op, had, old } = undo[i]!;
      if (parent === undefined) continue;
      if (Array.isArray(parent)) {
        const index = key as number;
        if (op === 'add') parent.splice(index, 1);
        else if (op === 'replace') parent[index] = old;
        else parent.splice(index, 0, old);
      } else if (had) parent[key as string] = old;
      else delete parent[key as string];
    }
    throw error;
  }
}

/** A pointer with an array index (or `-`) among its segments. */
export const NUMERIC_SEGMENT = /\/(0|[1-9][0-9]*|-)(\/|$)/;

/** `value` itself when folding made it (it is in `copies`) or it is no container, else a shallow copy that is. */
function ownedCopy(value: unknown, copies: WeakSet<object>): unknown {
  if (!isContainer(value) || copies.has(value)) return value;
  const copy = Array.isArray(value) ? value.slice() : { ...value };
  copies.add(copy);
  return copy;
}

/**
 * Applies `op` (its path relative to `root`, not empty) to `root`, first copying every container
 * on the way that is not in `copies` (path copying): values shared with the ops given, which
 * subscribers get, are never changed. Returns the new root.
 */
export function applyCopying(root: unknown, op: PatchOp, copies: WeakSet<object>): unknown {
  const top = ownedCopy(root, copies);
  let parent = top;
  const segments = fromPointer(op.path);
  for (let i = 0; i < segments.length - 1; i++) {
    const key = segments[i]!;
    // A path that leads nowhere is left for applyPatch to refuse.
    if (!isContainer(parent) || !Object.hasOwn(parent, key)) break;
    const child = ownedCopy((parent as Record<string, unknown>)[key], copies);
    (parent as Record<string, unknown>)[key] = child;
    parent = child;
  }
  return applyPatch(top, [op]);
}

export interface CompactOptions {
  /**
   * Also fold an op into an earlier one of the sequence that wrote one of its ancestors whole
   * (`add` or `replace`) when nothing has written that ancestor or its own ancestors since: the
   * op is applied to a copy of the earlier value instead of being kept. A work order created and
   * then queued in one command becomes one `add`. For the journal; subscribers keep the ops at
   * the paths that changed (the dashboard's activity feed reads state changes from them).
   */
  fold?: boolean;
}

/**
 * What compactOps knows of one path: the last op in `out` at it and at it or below it, and its
 * children by their segment's text (with its leading `/`): a short list, a map once they are many.
 */
interface PathNode {
  key: string;
  /** Index in `out` of the last op at exactly this path, or -1. */
  at: number;
  /** Index in `out` of the last op at this path or below it, or -1. */
  under: number;
  kids: PathNode[] | Map<string, PathNode> | undefined;
}

/** Children listed before a node's list becomes a map: an order has a dozen fields, a workflow 100,000 orders. */
const LISTED_KIDS = 16;

function kidOf(node: PathNode, key: string): PathNode | undefined {
  const kids = node.kids;
  if (kids === undefined) return undefined;
  if (!Array.isArray(kids)) return kids.get(key);
  for (const kid of kids) if (kid.key === key) return kid;
  return undefined;
}

function addKid(node: PathNode, key: string): PathNode {
  const kid: PathNode = { key, at: -1, under: -1, kids: undefined };
  const kids = node.kids;
  if (kids === undefined) node.kids = [kid];
  else if (!Array.isArray(kids)) kids.set(key, kid);
  else if (kids.length < LISTED_KIDS) kids.push(kid);
  else node.kids = new Map([...kids, kid].map((item) => [item.key, item]));
  return kid;
}

/**
 * Shortens a sequence of operations without changing its result: a `replace` of a path that was
 * already set earlier in the sequence overwrites that earlier value when nothing in between
 * touched the path, its ancestors (the document's root included) or its descendants. A burst of
 * progress updates becomes one op per field. Paths through array indexes are left alone (other
 * ops may shift them). With `fold`, see CompactOptions.
 */
export function compactOps(ops: readonly PatchOp[], options: CompactOptions = {}): PatchOp[] {
  const out: PatchOp[] = [];
  // The paths seen, as a tree walked once per op for all three uses (fold, replace, record): a
  // command on 100,000 orders has half a million ops, and maps holding every prefix of every path,
  // looked up two or three times per op, were a third of that command's time.
  const root: PathNode = { key: '', at: -1, under: -1, kids: undefined };
  /** Ops in `out` that are this function's own objects (their values may be changed as folding goes). */
  const ownOps = new Set<PatchOp>();
  /** The containers folding copied, which it may change in place. */
  const copies = new WeakSet<object>();
  const fold = options.fold === true;
  // The current op's proper ancestors below the root: where each ends in the path, and its node if seen.
  const ends: number[] = [];
  const chain: Array<PathNode | undefined> = [];
  for (const op of ops) {
    const path = op.path;
    if (path === '') {
      root.at = out.push(op) - 1;
      continue;
    }
    let depth = 0;
    let parent: PathNode | undefined = root;
    let from = 0;
    for (let i = path.indexOf('/', 1); i !== -1; i = path.indexOf('/', i + 1)) {
      // A path nothing was written at or under has no node, nor has anything below it.
      parent = parent && kidOf(parent, path.slice(from, i));
      chain[depth] = parent;
      ends[depth++] = i;
      from = i;
    }
    const leaf = parent && kidOf(parent, path.slice(from));
    if (fold) {
      // The outermost ancestor written whole (the root first) that nothing outside it overwrote since.
      let target = -1;
      let at = 0;
      let newer = -1;
      for (let k = -1; k < depth; k++) {
        const node = k < 0 ? root : chain[k];
        if (node === undefined) break;
        const index = node.at;
        if (index < 0 || index < newer) continue;
        if (out[index]!.op !== 'remove') {
          at = k < 0 ? 0 : ends[k]!;
          // Through an array index the earlier op may name another element by now (splices shift them).
          if (!NUMERIC_SEGMENT.test(path.slice(0, at))) target = index;
          break;
        }
        newer = index;
      }
      if (target >= 0) {
        let whole = out[target] as Extract<PatchOp, { value: unknown }>;
        if (!ownOps.has(whole)) {
          whole = out[target] = { ...whole };
          ownOps.add(whole);
        }
        whole.value = applyCopying(whole.value, { ...op, path: path.slice(at) }, copies);
        continue;
      }
    }
    if (op.op === 'replace' && leaf !== undefined && leaf.at >= 0 && leaf.under === leaf.at && root.at < leaf.at && !NUMERIC_SEGMENT.test(path)) {
      const candidate = leaf.at;
      const earlier = out[candidate]!;
      let clear = earlier.op !== 'remove';
      for (let k = 0; clear && k < depth; k++) clear = chain[k]!.at < candidate;
      if (clear) {
        if (ownOps.has(earlier)) (earlier as Extract<PatchOp, { value: unknown }>).value = op.value;
        else {
          const copy = { ...earlier, value: op.value } as PatchOp;
          out[candidate] = copy;
          ownOps.add(copy);
        }
        continue;
      }
    }
    const index = out.push(op) - 1;
    let node = root;
    for (let k = 0; k < depth; k++) {
      node = chain[k] ?? addKid(node, path.slice(k === 0 ? 0 : ends[k - 1], ends[k]));
      node.under = index;
    }
    const own = leaf ?? addKid(node, path.slice(from));
    own.at = own.under = index;
  }
  return out;
}
