// compactOps as it was before its rewrite for big commands (now a tree of the paths seen, walked
// once per op): the differential test in compact-ops.test.ts holds the new one to exactly its output.
import { applyCopying, NUMERIC_SEGMENT, type CompactOptions, type PatchOp } from '../../shared/patch.ts';

/** The proper prefixes of a pointer: `/a/b/c` → `/a`, `/a/b`. */
function ancestors(pointer: string): string[] {
  const out: string[] = [];
  for (let i = pointer.indexOf('/', 1); i !== -1; i = pointer.indexOf('/', i + 1)) out.push(pointer.slice(0, i));
  return out;
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


/** The previous compactOps: same contract (see shared/patch.ts). */
export function referenceCompactOps(ops: readonly PatchOp[], options: CompactOptions = {}): PatchOp[] {
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
