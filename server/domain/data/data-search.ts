import { HubError } from '../../../shared/errors.ts';
import type { ReplyOf } from '../../../shared/contract.ts';
import type { DataFilter, DataReference } from '../../../shared/schemas/data.ts';
import { requireWorkflow } from '../machinery/context.ts';
import { requireData } from './inventory.ts';
import { versionOf, type HubState } from '../machinery/state.ts';

type SortKey = number | string;

/** The value a reference sorts by; an unknown size sorts before every known one. */
function keyOf(ref: DataReference, sort: DataFilter['sort']): SortKey {
  if (sort === 'path') return ref.path;
  if (sort === 'size') return ref.size ?? -1;
  return ref.createdAt;
}

/** Orders by key, then by id so that equal keys keep a stable, resumable order. */
function compare(a: [SortKey, string], b: [SortKey, string]): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1;
}

/** A cursor is the sort key and id of the last item returned, so pages hold even when data is added. */
function encodeCursor(key: SortKey, id: string): string {
  return Buffer.from(JSON.stringify([key, id])).toString('base64url');
}

function decodeCursor(cursor: string, sort: DataFilter['sort']): [SortKey, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const expected = sort === 'path' ? 'string' : 'number';
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === expected && typeof value[1] === 'string') return [value[0], value[1]];
  } catch {
    // Falls through to the error below.
  }
  throw new HubError('VALIDATION', `cursor is not a nextCursor of a search sorted by ${sort}`);
}

/** True when a reference passes every condition of the filter. */
export function matchesFilter(ref: DataReference, filter: DataFilter): boolean {
  if (filter.dataType !== undefined && ref.dataType !== filter.dataType) return false;
  if (filter.status !== undefined && ref.status !== filter.status) return false;
  if (filter.source !== undefined && ref.provenance.source !== filter.source) return false;
  if (filter.agentId !== undefined && ref.provenance.agentId !== filter.agentId) return false;
  if (filter.workOrderId !== undefined && ref.provenance.workOrderId !== filter.workOrderId) return false;
  if (filter.createdAfter !== undefined && ref.createdAt < filter.createdAfter) return false;
  if (filter.createdBefore !== undefined && ref.createdAt >= filter.createdBefore) return false;
  if (filter.tags && !filter.tags.every((tag) => ref.tags.includes(tag))) return false;
  if (filter.text !== undefined) {
    const text = filter.text.toLowerCase();
    if (!ref.path.toLowerCase().includes(text) && !ref.description.toLowerCase().includes(text)) return false;
  }
  return true;
}

/**
 * The workflow's references that match the filter, sorted and a page at a time. A query: it scans
 * the workflow's inventory (changes never do). `total` counts all matches.
 */
export function searchData(state: HubState, filter: DataFilter): ReplyOf<'control', 'data.search'> {
  const workflow = requireWorkflow(state, filter.workflowId);
  const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor, filter.sort);
  const direction = filter.order === 'desc' ? -1 : 1;
  const matches: Array<{ key: [SortKey, string]; ref: DataReference }> = [];
  for (const ref of Object.values(workflow.data)) {
    if (matchesFilter(ref, filter)) matches.push({ key: [keyOf(ref, filter.sort), ref.id], ref });
  }
  matches.sort((a, b) => direction * compare(a.key, b.key));
  const rest = after ? matches.filter((m) => direction * compare(m.key, after) > 0) : matches;
  const page = rest.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    version: versionOf(state, workflow.id),
    items: page.map((m) => m.ref),
    total: matches.length,
    nextCursor: rest.length > page.length && last ? encodeCursor(last.key[0], last.key[1]) : null,
  };
}

/** One reference and the workflow's version. */
export function getData(state: HubState, workflowId: string, dataId: string): ReplyOf<'control', 'data.get'> {
  const workflow = requireWorkflow(state, workflowId);
  return { version: versionOf(state, workflowId), item: requireData(workflow, dataId) };
}
