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

/** The proper prefixes of a pointer: `/a/b/c` → `/a`, `/a/b`. */
function ancestors(pointer: string): string[] {
  const out: string[] = [];
  for (let i = pointer.indexOf('/', 1); i !== -1; i = pointer.indexOf('/', i + 1)) out.push(pointer.slice(0, i));
  return out;
}

const NUMERIC_SEGMENT = /\/(0|[1-9][0-9]*|-)(\/|$)/;

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
function applyCopying(root: unknown, op: PatchOp, copies: WeakSet<object>): unknown {
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

/**
 * The index in `out` (and the path) of the op that an op at `path` folds into: the outermost
 * ancestor written whole (the root included) that nothing outside it has overwritten since.
 */
function foldTarget(path: string, lastAt: ReadonlyMap<string, number>, out: readonly PatchOp[]): [number, string] | undefined {
  let newer = -1;
  for (let end = 0; end !== -1; end = path.indexOf('/', end + 1)) {
    const ancestor = path.slice(0, end);
    const index = lastAt.get(ancestor);
    if (index === undefined || index < newer) continue;
    // Through an array index the earlier op may name another element by now (splices shift them).
    if (out[index]!.op !== 'remove') return NUMERIC_SEGMENT.test(ancestor) ? undefined : [index, ancestor];
    newer = index;
  }
  return undefined;
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
 * Shortens a sequence of operations without changing its result: a `replace` of a path that was
 * already set earlier in the sequence overwrites that earlier value when nothing in between
 * touched the path, its ancestors (the document's root included) or its descendants. A burst of
 * progress updates becomes one op per field. Paths through array indexes are left alone (other
 * ops may shift them). With `fold`, see CompactOptions.
 */
export function compactOps(ops: readonly PatchOp[], options: CompactOptions = {}): PatchOp[] {
  const out: PatchOp[] = [];
  /** Index in `out` of the last op at exactly this path. */
  const lastAt = new Map<string, number>();
  /** Index in `out` of the last op at this path or below it. */
  const lastUnder = new Map<string, number>();
  /** Ops in `out` that are this function's own objects (their values are copied as folding changes them). */
  const ownOps = new Set<number>();
  /** The containers folding copied, which it may change in place. */
  const copies = new WeakSet<object>();
  const record = (op: PatchOp, index: number) => {
    lastAt.set(op.path, index);
    lastUnder.set(op.path, index);
    for (const ancestor of ancestors(op.path)) lastUnder.set(ancestor, index);
  };
  for (const op of ops) {
    if (options.fold && op.path !== '') {
      const target = foldTarget(op.path, lastAt, out);
      if (target) {
        const [index, at] = target;
        if (!ownOps.has(index)) {
          out[index] = { ...out[index]! };
          ownOps.add(index);
        }
        const whole = out[index] as Extract<PatchOp, { value: unknown }>;
        whole.value = applyCopying(whole.value, { ...op, path: op.path.slice(at.length) }, copies);
        continue;
      }
    }
    if (op.op === 'replace' && op.path !== '' && !NUMERIC_SEGMENT.test(op.path)) {
      const candidate = lastAt.get(op.path);
      const earlier = candidate === undefined ? undefined : out[candidate];
      if (
        earlier &&
        earlier.op !== 'remove' &&
        lastUnder.get(op.path) === candidate &&
        (lastAt.get('') ?? -1) < candidate! &&
        ancestors(op.path).every((a) => (lastAt.get(a) ?? -1) < candidate!)
      ) {
        out[candidate!] = { ...earlier, value: op.value };
        ownOps.delete(candidate!);
        continue;
      }
    }
    out.push(op);
    record(op, out.length - 1);
  }
  return out;
}
