import { HubError } from '../../../shared/errors.ts';
import type { ReplyOf } from '../../../shared/contract.ts';
import type { DataFilter, DataReference } from '../../../shared/schemas/data.ts';
import { requireWorkflow } from '../machinery/context.ts';
import { EXAMINED_PER_PAGE } from '../machinery/read-bounds.ts';
import { requireData } from './inventory.ts';
import { comparePlaces, type ReferenceIndex, type SortPlace } from './reference-index.ts';
import { versionOf, type HubState } from '../machinery/state.ts';

/** A cursor is a place (sort key and id) in the sort order, so pages hold even when data is added. */
function encodeCursor(place: SortPlace): string {
  return Buffer.from(JSON.stringify(place)).toString('base64url');
}

function decodeCursor(cursor: string, sort: DataFilter['sort']): SortPlace {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const expected = sort === 'path' ? 'string' : 'number';
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === expected && typeof value[1] === 'string') return [value[0], value[1]];
  } catch {
    // Falls through to the error below.
  }
  throw new HubError('VALIDATION', `cursor is not a nextCursor of a search sorted by ${sort}`);
}

/** The test of the filter's conditions, made once for a search: what a reference must pass. */
function matcher(filter: DataFilter): (ref: DataReference) => boolean {
  const text = filter.text?.toLowerCase();
  const tags = filter.tags ?? [];
  return (ref) => {
    if (filter.dataType !== undefined && ref.dataType !== filter.dataType) return false;
    if (filter.status !== undefined && ref.status !== filter.status) return false;
    if (filter.source !== undefined && ref.provenance.source !== filter.source) return false;
    if (filter.agentId !== undefined && ref.provenance.agentId !== filter.agentId) return false;
    if (filter.workOrderId !== undefined && ref.provenance.workOrderId !== filter.workOrderId) return false;
    if (filter.createdAfter !== undefined && ref.createdAt < filter.createdAfter) return false;
    if (filter.createdBefore !== undefined && ref.createdAt >= filter.createdBefore) return false;
    for (const tag of tags) if (!ref.tags.includes(tag)) return false;
    if (text !== undefined && !ref.path.toLowerCase().includes(text) && !ref.description.toLowerCase().includes(text)) return false;
    return true;
  };
}

/** The conditions a filter may set; the others only sort and page. */
const CONDITIONS = ['dataType', 'tags', 'text', 'agentId', 'workOrderId', 'source', 'status', 'createdAfter', 'createdBefore'] as const;

/** The number of matches when the index knows it without looking at references: no condition, or one it counts. */
function countedTotal(index: ReferenceIndex, filter: DataFilter): number | undefined {
  const tags = new Set(filter.tags ?? []);
  const set = CONDITIONS.filter((condition) => (condition === 'tags' ? tags.size > 0 : filter[condition] !== undefined));
  if (set.length === 0) return index.size;
  if (set.length > 1) return undefined;
  switch (set[0]) {
    case 'status':
    case 'dataType':
    case 'source':
    case 'agentId':
    case 'workOrderId':
      return index.count(set[0], filter[set[0]]!);
    case 'tags':
      return tags.size === 1 ? index.count('tag', [...tags][0]!) : undefined;
    default:
      return undefined;
  }
}

/** Where a walk in sort order starts (after the cursor, or at the start of a time range) and the place it stops at. */
function bounds(filter: DataFilter, after: SortPlace | undefined): { start?: SortPlace; inclusive: boolean; beyond: (place: SortPlace) => boolean } {
  const descending = filter.order === 'desc';
  const never = () => false;
  // Only the order by createdAt can skip to the time range and stop at its end.
  if (filter.sort !== 'createdAt') return after ? { start: after, inclusive: false, beyond: never } : { inclusive: false, beyond: never };
  const { createdAfter: low, createdBefore: high } = filter;
  // An empty id sorts before every id: [t, ''] is the first place at time t.
  const edge: SortPlace | undefined = descending ? (high === undefined ? undefined : [high, '']) : low === undefined ? undefined : [low, ''];
  const beyond = descending ? (place: SortPlace) => low !== undefined && (place[0] as number) < low : (place: SortPlace) => high !== undefined && (place[0] as number) >= high;
  const edgeFirst = edge && (!after || (descending ? comparePlaces(edge, after) < 0 : comparePlaces(edge, after) > 0));
  if (edgeFirst) return { start: edge, inclusive: !descending, beyond };
  return after ? { start: after, inclusive: false, beyond } : { inclusive: false, beyond };
}

/**
 * The workflow's references that match the filter, in sort order, a page at a time: the walk
 * starts at the cursor in the workflow's index and looks at no more than EXAMINED_PER_PAGE
 * references, so a page may end short (or empty) with a cursor to keep going; only a null cursor
 * is the end. `total` is exact (`totalExact`) when the index counts it (no condition, or one on
 * status, dataType, source, agentId, workOrderId or a single tag), when the workflow holds no more
 * references than a page may look at (the walk then starts at the beginning and counts them all),
 * or when a first page saw every match; otherwise it is the matches this page saw from its cursor
 * on: a lower bound.
 */
export function searchData(state: HubState, filter: DataFilter): ReplyOf<'control', 'data.search'> {
  const workflow = requireWorkflow(state, filter.workflowId);
  const index = state.inventory.references(workflow);
  const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor, filter.sort);
  const descending = filter.order === 'desc';
  const matches = matcher(filter);
  const counted = countedTotal(index, filter);
  const whole = counted === undefined && index.size <= EXAMINED_PER_PAGE;
  const { start, inclusive, beyond } = bounds(filter, whole ? undefined : after);
  const pastCursor = (place: SortPlace) => !after || comparePlaces(place, after) * (descending ? -1 : 1) > 0;
  const items: DataReference[] = [];
  let lastItem: SortPlace | undefined;
  let lastExamined: SortPlace | undefined;
  let examined = 0;
  let seen = 0;
  let more = false;
  let stopped = false;
  for (const [place, ref] of index.places(filter.sort, descending, start, inclusive)) {
    if (beyond(place)) break;
    if (examined === EXAMINED_PER_PAGE) {
      stopped = true;
      break;
    }
    examined++;
    lastExamined = place;
    if (!matches(ref)) continue;
    seen++;
    // Only a walk of the whole workflow meets the places up to the cursor: counted, not shown.
    if (!pastCursor(place)) continue;
    if (items.length < filter.limit) {
      items.push(ref);
      lastItem = place;
      continue;
    }
    more = true;
    // Without a total from the index, the walk goes on counting.
    if (counted !== undefined) break;
  }
  const total = counted ?? (whole || (after === undefined && !stopped) ? seen : undefined);
  const page = { version: versionOf(state, workflow.id), items, total: total ?? seen, totalExact: total !== undefined };
  const full = items.length === filter.limit;
  if (!more && !stopped) return { ...page, nextCursor: null };
  // Full: the next page starts after the last item. Short: after the last reference looked at.
  return { ...page, nextCursor: encodeCursor(full ? lastItem! : lastExamined!) };
}

/** One reference and the workflow's version. */
export function getData(state: HubState, workflowId: string, dataId: string): ReplyOf<'control', 'data.get'> {
  const workflow = requireWorkflow(state, workflowId);
  return { version: versionOf(state, workflowId), item: requireData(workflow, dataId) };
}
