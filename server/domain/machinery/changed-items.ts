/** A document key (state.ts's DocKey, named here without importing it back). */
type DocKey = string;

type Path = ReadonlyArray<string | number>;

/** A whole field (or document) changed: none of its items can be taken from an earlier text. */
export const ALL_ITEMS = 'all';

/** What changed in one document: per top-level field, the keys of its items written, or ALL_ITEMS. */
export type DocChanges = typeof ALL_ITEMS | Map<string, Set<string> | typeof ALL_ITEMS>;

/** What changed in every document since a moment: a document missing from `docs` did not change. */
export interface ChangeSet {
  docs: Map<DocKey, DocChanges>;
  /** Nothing is known (the tracker started after the state was loaded): treat every document as changed whole. */
  unknown: boolean;
}

/**
 * Which items of each document's object-valued fields (a workflow's work orders, data references,
 * ...) were written since the last `take`, so that a snapshot can copy the text of the others
 * from the snapshot before it instead of serialising them again. The transaction notes every
 * write; a write that was rolled back stays noted, which only costs an item serialised again.
 */
export class ChangedItems {
  private docs = new Map<DocKey, DocChanges>();
  private unknown = true;
  /** Off until a snapshot will take what is noted: kept by nobody, it would grow with every item written. */
  private tracking = false;
  /**
   * The last two items noted (document, field, key each): a command writes several fields of one
   * item, in turns with another (an order, then its workflow's counts), and each was noted at its
   * first write. Only `take` makes them stale: anything else only widens what is noted.
   */
  private doc0: DocKey | undefined;
  private field0: string | undefined;
  private item0: string | undefined;
  private doc1: DocKey | undefined;
  private field1: string | undefined;
  private item1: string | undefined;

  /** Starts noting writes (a store whose snapshots copy unchanged items takes them). */
  track(): void {
    this.tracking = true;
  }

  /** Notes a write to `doc` at `path` (plus `key`). */
  note(doc: DocKey, path: Path, key: string | undefined): void {
    if (!this.tracking) return;
    const depth = path.length + (key === undefined ? 0 : 1);
    if (depth >= 2) {
      const item = path.length > 1 ? path[1]! : key!;
      if (item === this.item0 && path[0] === this.field0 && doc === this.doc0) return;
      if (item === this.item1 && path[0] === this.field1 && doc === this.doc1) return;
      this.noteItem(doc, String(path[0]), String(item));
      return;
    }
    if (depth === 0) {
      this.docs.set(doc, ALL_ITEMS);
      return;
    }
    const changes = this.changesOf(doc);
    if (changes !== ALL_ITEMS) changes.set(String(path.length > 0 ? path[0] : key), ALL_ITEMS);
  }

  private noteItem(doc: DocKey, field: string, item: string): void {
    const changes = this.changesOf(doc);
    if (changes === ALL_ITEMS) return;
    let items = changes.get(field);
    if (items === ALL_ITEMS) return;
    if (!items) changes.set(field, (items = new Set()));
    items.add(item);
    this.doc1 = this.doc0;
    this.field1 = this.field0;
    this.item1 = this.item0;
    this.doc0 = doc;
    this.field0 = field;
    this.item0 = item;
  }

  private changesOf(doc: DocKey): DocChanges {
    let changes = this.docs.get(doc);
    if (!changes) this.docs.set(doc, (changes = new Map()));
    return changes;
  }

  /** Marks a whole document as changed (a snapshot that would have held it failed). */
  markWhole(doc: DocKey): void {
    this.docs.set(doc, ALL_ITEMS);
  }

  /** What changed since the last take (nothing is known before it tracked and was taken once), and starts noting afresh. */
  take(): ChangeSet {
    const taken = { docs: this.docs, unknown: this.unknown };
    this.docs = new Map();
    this.unknown = !this.tracking;
    this.doc0 = this.doc1 = undefined;
    return taken;
  }
}

/** The items of `field` written in a document whose changes are `changes` (undefined: none), or ALL_ITEMS. */
export function changedIn(changes: DocChanges | undefined, field: string): ReadonlySet<string> | typeof ALL_ITEMS | undefined {
  return changes === ALL_ITEMS ? ALL_ITEMS : changes?.get(field);
}
