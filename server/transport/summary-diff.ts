import { diffJson } from '../../shared/json-diff.ts';
import { escapeSegment, fromPointer, type PatchOp } from '../../shared/patch.ts';
import type { SummaryView } from '../../shared/schemas/views.ts';
import { copyJson } from '../domain/machinery/transaction.ts';

// A summary view's stages, objectives and KPIs are the workflow's own, keyed by id, and may be
// thousands. Copied and diffed whole at each broadcast, they made every change of the workflow
// (a step, an order's end) cost all of them while a monitor followed its summary; only the items
// the workflow's ops touched since the view was computed are copied and diffed now.

/** The fields of a summary view that are the workflow's fields of the same name, keyed by id. */
const KEYED = ['stages', 'objectives', 'kpis'] as const;
type Keyed = (typeof KEYED)[number];
const isKeyed = (field: string): field is Keyed => (KEYED as readonly string[]).includes(field);

/** The items of each keyed field touched since a view was computed; `all` when a whole field (or the document) was. */
export type Touched = Map<Keyed, Set<string> | 'all'>;

/** Notes what one op of the workflow's document touches of its summary's keyed fields. */
export function noteTouched(touched: Touched, path: string): void {
  const [field, key] = fromPointer(path);
  if (field === undefined) {
    for (const name of KEYED) touched.set(name, 'all');
    return;
  }
  if (!isKeyed(field)) return;
  const keys = touched.get(field);
  if (keys === 'all') return;
  if (key === undefined) touched.set(field, 'all');
  else if (keys) keys.add(key);
  else touched.set(field, new Set([key]));
}

/**
 * The next value of a summary view (a copy, sharing the untouched items of `before`, which is never
 * changed) and the patch from `before` to it. `fresh` is the view computed from the state now.
 * Costs the items touched and the other fields, not every stage, objective and KPI.
 */
export function nextSummary(before: SummaryView, fresh: SummaryView, touched: Touched): { value: SummaryView; ops: PatchOp[] } {
  const was = before as Record<string, unknown>;
  const now = fresh as Record<string, unknown>;
  // A keyed field is followed item by item only while both values hold it and it was not replaced whole.
  const byItem = (field: string): field is Keyed => isKeyed(field) && touched.get(field) !== 'all' && Object.hasOwn(was, field) && Object.hasOwn(now, field);
  const restBefore: Record<string, unknown> = {};
  const restNow: Record<string, unknown> = {};
  for (const field in was) if (!byItem(field)) restBefore[field] = was[field];
  for (const field in now) if (!byItem(field)) restNow[field] = now[field];
  const rest = copyJson(restNow);
  const ops = diffJson(restBefore, rest);
  const value: Record<string, unknown> = {};
  for (const field in now) {
    if (!byItem(field)) {
      if (Object.hasOwn(rest, field)) value[field] = rest[field];
      continue;
    }
    const keys = touched.get(field) as Set<string> | undefined;
    value[field] = keys ? nextItems(field, was[field] as Record<string, unknown>, now[field] as Record<string, unknown>, keys, ops) : was[field];
  }
  return { value: value as SummaryView, ops };
}

/** A copy of `before` with the `keys` touched taken from `current`, and the ops that say so (appended to `ops`). */
function nextItems(field: string, before: Record<string, unknown>, current: Record<string, unknown>, keys: Set<string>, ops: PatchOp[]): Record<string, unknown> {
  const items: Record<string, unknown> = { ...before };
  for (const key of keys) {
    const path = `/${field}/${escapeSegment(key)}`;
    if (!Object.hasOwn(current, key)) {
      if (Object.hasOwn(items, key)) ops.push({ op: 'remove', path });
      delete items[key];
      continue;
    }
    const item = copyJson(current[key]);
    if (!Object.hasOwn(before, key)) ops.push({ op: 'add', path, value: item });
    else for (const op of diffJson(before[key], item)) ops.push({ ...op, path: path + op.path });
    items[key] = item;
  }
  return items;
}
