import { escapeSegment, type PatchOp } from './patch.ts';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether two JSON values are equal, arrays element by element and objects key by key. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => sameJson(item, b[i]));
  if (Array.isArray(b)) return false;
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  return aKeys.every((key) => Object.hasOwn(b, key) && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
}

function diffInto(before: unknown, after: unknown, pointer: string, ops: PatchOp[]): void {
  if (isObject(before) && isObject(after)) {
    for (const key of Object.keys(before)) if (!Object.hasOwn(after, key)) ops.push({ op: 'remove', path: `${pointer}/${escapeSegment(key)}` });
    for (const key of Object.keys(after)) {
      const path = `${pointer}/${escapeSegment(key)}`;
      if (!Object.hasOwn(before, key)) ops.push({ op: 'add', path, value: after[key] });
      else diffInto(before[key], after[key], path, ops);
    }
    return;
  }
  if (!sameJson(before, after)) ops.push({ op: 'replace', path: pointer, value: after });
}

/**
 * The JSON Patch (the protocol's add, replace and remove) that turns `before` into `after`:
 * objects are compared key by key, recursing; an array or a scalar that differs is replaced
 * whole. Views hold short arrays (ids of a page, a KPI's recent history), and a page that gains
 * an order shifts every id in it: one replace says that in fewer bytes than an op per index,
 * which is what diff packages such as fast-json-patch's `compare` send. The ops share values
 * with `after`: keep `after` unchanged while they are in use.
 */
export function diffJson(before: unknown, after: unknown): PatchOp[] {
  const ops: PatchOp[] = [];
  diffInto(before, after, '', ops);
  return ops;
}
