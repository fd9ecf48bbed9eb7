import type { DataFilter, DataReference } from '../../../shared/schemas/data.ts';
import { BTree } from '../machinery/sorted-tree.ts';

/** A sort order of data.search. */
export type SortOrder = DataFilter['sort'];
/** The value a reference sorts by. */
export type SortKey = number | string;
/** A reference's place in one sort order: its key, then its id, so equal keys keep a stable order. */
export type SortPlace = readonly [SortKey, string];

/** The conditions of a filter whose matches the index counts. */
export type CountedField = 'status' | 'dataType' | 'source' | 'agentId' | 'workOrderId' | 'tag';

/** Orders places by key, then by id. */
export function comparePlaces(a: SortPlace, b: SortPlace): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1;
}

// The same order, written for each tree's own key type: inserting is mostly comparing.
function byNumber(a: SortPlace, b: SortPlace): number {
  return (a[0] as number) - (b[0] as number) || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);
}

function byText(a: SortPlace, b: SortPlace): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0;
}

/** The value a reference sorts by; an unknown size sorts before every known one. */
export function sortKeyOf(ref: DataReference, sort: SortOrder): SortKey {
  if (sort === 'path') return ref.path;
  if (sort === 'size') return ref.size ?? -1;
  return ref.createdAt;
}

/** What the index filed a reference under, kept so that it can be unfiled after the reference changed. */
interface Filed {
  ref: DataReference;
  places: Record<SortOrder, SortPlace>;
  status: string;
  dataType: string;
  source: string;
  agentId: string | null;
  workOrderId: string | null;
  tags: readonly string[];
}

const SORTS: readonly SortOrder[] = ['createdAt', 'path', 'size'];
const SINGLE = ['status', 'dataType', 'source', 'agentId', 'workOrderId'] as const;

function filedOf(ref: DataReference): Filed {
  const { agentId, workOrderId, source } = ref.provenance;
  return {
    ref,
    places: { createdAt: [ref.createdAt, ref.id], path: [ref.path, ref.id], size: [sortKeyOf(ref, 'size'), ref.id] },
    status: ref.status,
    dataType: ref.dataType,
    source,
    agentId,
    workOrderId,
    // Registration keeps tags distinct; a copy only if some are not, so each counts once.
    tags: ref.tags.length < 2 || new Set(ref.tags).size === ref.tags.length ? ref.tags : [...new Set(ref.tags)],
  };
}

/**
 * One workflow's data references in each order data.search sorts by (B+ trees of places, each
 * holding its reference), and how many carry each status, type, source, producing agent and work
 * order, and tag. A page of a search then starts at its cursor in O(log n) instead of sorting
 * every reference, and a filter on one of those fields knows its total. Kept up to date by
 * whatever registers or changes a reference (`file`), each change with its undo.
 */
export class ReferenceIndex {
  private readonly trees = {
    createdAt: new BTree<SortPlace, DataReference>(undefined, byNumber),
    path: new BTree<SortPlace, DataReference>(undefined, byText),
    size: new BTree<SortPlace, DataReference>(undefined, byNumber),
  };
  private readonly filed = new Map<string, Filed>();
  private readonly counts: Record<CountedField, Map<string, number>> = {
    status: new Map(),
    dataType: new Map(),
    source: new Map(),
    agentId: new Map(),
    workOrderId: new Map(),
    tag: new Map(),
  };

  constructor(refs: Iterable<DataReference> = []) {
    for (const ref of refs) this.fileFields(filedOf(ref));
  }

  /** How many references are filed. */
  get size(): number {
    return this.filed.size;
  }

  /** How many references carry `value` in `field` (a tag among their tags). */
  count(field: CountedField, value: string): number {
    return this.counts[field].get(value) ?? 0;
  }

  /**
   * The references in one sort order with their places, ascending or descending, from `start` on
   * (`start` itself only when `inclusive`); from the first place when there is no start.
   */
  places(sort: SortOrder, descending: boolean, start?: SortPlace, inclusive = false): IterableIterator<[SortPlace, DataReference]> {
    const tree = this.trees[sort];
    if (descending) return tree.entriesReversed(start, undefined, !inclusive);
    const entries = tree.entries(start);
    if (!start || inclusive || !tree.has(start)) return entries;
    entries.next();
    return entries;
  }

  /**
   * Files a reference (new, or changed since it was filed) under its fields as they are now;
   * returns what puts the index back as it was.
   */
  file(ref: DataReference): () => void {
    const before = this.filed.get(ref.id);
    const after = filedOf(ref);
    if (before) this.unfile(before);
    this.fileFields(after);
    return () => {
      this.unfile(after);
      if (before) this.fileFields(before);
    };
  }

  private fileFields(filed: Filed): void {
    this.filed.set(filed.ref.id, filed);
    for (const sort of SORTS) this.trees[sort].set(filed.places[sort], filed.ref);
    for (const field of SINGLE) {
      const value = filed[field];
      if (value !== null) this.counts[field].set(value, (this.counts[field].get(value) ?? 0) + 1);
    }
    for (const tag of filed.tags) this.counts.tag.set(tag, (this.counts.tag.get(tag) ?? 0) + 1);
  }

  private unfile(filed: Filed): void {
    this.filed.delete(filed.ref.id);
    for (const sort of SORTS) this.trees[sort].delete(filed.places[sort]);
    for (const field of SINGLE) {
      const value = filed[field];
      if (value !== null) this.uncount(this.counts[field], value);
    }
    for (const tag of filed.tags) this.uncount(this.counts.tag, tag);
  }

  private uncount(counts: Map<string, number>, value: string): void {
    const left = counts.get(value)! - 1;
    if (left === 0) counts.delete(value);
    else counts.set(value, left);
  }
}
