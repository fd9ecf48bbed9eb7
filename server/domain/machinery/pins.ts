/** A document key (a workflow id, or the agent pool's): state.ts's DocKey, named here without importing it back. */
type DocKey = string;

type Path = ReadonlyArray<string | number>;
type Json = Record<string, unknown>;

/** The keys of an object-valued field in their JSON order: an array, or a view of one kept elsewhere. */
export interface KeyList {
  readonly length: number;
  at(index: number): string | undefined;
}

/**
 * Where a pin gets the keys of a big field (a workflow's work orders) without listing them: a list
 * the state keeps anyway. Object.keys of 100,000 orders held the loop 14 ms at every big read.
 */
export type KeySource = (field: string, object: Record<string, unknown>) => KeyList | undefined;

/** A value that did not exist at the pinned version. */
const ABSENT = Symbol('absent');

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * One object-valued top-level field of a pinned document (`workOrders`, `data`, ...), read item by
 * item. `keys` is taken before its first structural change, so it lists the keys at the pinned
 * version; `detached` once the field itself was replaced: later writes go to another object.
 */
interface PinnedCollection {
  object: Json;
  field: string;
  keys: KeyList | undefined;
  captured: Map<string, string | typeof ABSENT>;
  detached: boolean;
}

/**
 * One unit of a pinned document: a top-level field (`key` undefined; an object-valued field as
 * `{}`, its items following as units of their own), or one item of an object-valued field.
 * `json` is the value's JSON text.
 */
export interface PinnedUnit {
  field: string;
  key: string | undefined;
  json: string;
}

/**
 * Where PinnedDoc.readTo puts the document's JSON text. A sink that keeps the text of items from
 * an earlier version (a snapshot on disk) may put items itself: then it must hold exactly their
 * text at the pinned version.
 */
export interface PinSink {
  /** The next piece of the text. */
  text(piece: string): void;
  /**
   * Item `key` at `place` among the keys of object-valued `field` comes next, after a comma when
   * `comma`: true when the sink puts the comma and `"key":value` itself, false to be given them as
   * the next piece of text.
   */
  item?(field: string, place: number, key: string, comma: boolean): boolean;
}

/**
 * A document held at one version while it is serialised a piece at a time: the writer goes on
 * changing the live document meanwhile, and tells every pin first (`beforeWrite`), so the pin
 * keeps the JSON of what is about to change as it was. The text it reads is exactly
 * `JSON.stringify` of the document at the pinned version, however the document changed since.
 */
export class PinnedDoc {
  /** Why the pin no longer describes its version (a rollback), if it does not. */
  aborted: string | undefined;
  private readonly topKeys: string[];
  private topPlace: Map<string, number> | undefined;
  private readonly topCaptured = new Map<string, string | typeof ABSENT>();
  private readonly collections = new Map<string, PinnedCollection>();
  /** The root was replaced or removed: the pin keeps the old root, which nothing changes any more. */
  private detached = false;
  /** Where reading stands: the top-level field, and the item within it (-1: not started). */
  private top = 0;
  private item = -1;
  private wroteTop = false;
  private wroteItem = false;
  private started = false;
  private done = false;

  constructor(
    private readonly pins: Pins,
    readonly doc: DocKey,
    private readonly root: Json,
    readonly version: number,
    private readonly keySource: KeySource | undefined,
  ) {
    this.topKeys = Object.keys(root);
  }

  /** Called by the writer before it changes `doc` at `path` (plus `key`); `structural` when a key is added or removed. */
  beforeWrite(path: Path, key: string | undefined, structural: boolean): void {
    if (this.detached) return;
    const depth = path.length + (key === undefined ? 0 : 1);
    if (depth === 0) {
      this.detached = true;
      return;
    }
    const first = String(path.length > 0 ? path[0] : key);
    if (this.passed(first) || this.topCaptured.has(first)) return;
    // A field replaced or removed since the pin is read from the object it had, whatever it holds now.
    const held = this.collections.get(first);
    if (held?.detached) return;
    const value = this.root[first];
    if (!held && !isRecord(value)) {
      this.topCaptured.set(first, value === undefined ? ABSENT : JSON.stringify(value));
      return;
    }
    const collection = held ?? this.collection(first, value as Json);
    if (depth === 1) {
      // The field itself is replaced or removed: the pin keeps reading the object it had.
      this.keysOf(collection);
      collection.detached = true;
      return;
    }
    const second = String(path.length > 1 ? path[1] : key);
    if (depth === 2 && structural) this.keysOf(collection);
    if (collection.captured.has(second)) return;
    const item = collection.object[second];
    collection.captured.set(second, item === undefined ? ABSENT : JSON.stringify(item));
  }

  /**
   * The next piece of the document's JSON text, covering at most `items` values (work orders, data
   * references, fields), or undefined once all of it was read.
   */
  read(items: number): string | undefined {
    let text = '';
    return this.readTo(items, { text: (piece) => (text += piece) }) ? text : undefined;
  }

  /**
   * read, piece by piece into `sink`, which may put items' text itself (see PinSink); false once
   * all of the document was read.
   */
  readTo(items: number, sink: PinSink): boolean {
    if (this.done) return false;
    if (!this.started) {
      this.started = true;
      sink.text('{');
    }
    for (let budget = items; budget > 0 && this.top < this.topKeys.length; budget--) {
      const key = this.topKeys[this.top]!;
      const captured = this.topCaptured.get(key);
      const value = captured === undefined ? this.root[key] : undefined;
      // A field that held an object at the pinned version is read from that object, even if replaced since.
      const collection = this.collections.get(key) ?? (isRecord(value) ? this.collection(key, value) : undefined);
      if (captured === undefined && collection) {
        this.readItem(key, collection, sink);
        continue;
      }
      const json = captured === undefined ? JSON.stringify(value) : captured === ABSENT ? undefined : captured;
      if (json !== undefined) {
        sink.text((this.wroteTop ? ',' : '') + JSON.stringify(key) + ':' + json);
        this.wroteTop = true;
      }
      this.top++;
    }
    if (this.top === this.topKeys.length) {
      this.done = true;
      this.release();
      sink.text('}');
    }
    return true;
  }

  /**
   * The next unit of the document (see PinnedUnit), or undefined once all of it was read: setting
   * each unit's value in order (an item into the field set before it) rebuilds the document at the
   * pinned version with its keys in the same order. Read a pin with this or with `read`, not both.
   */
  readUnit(): PinnedUnit | undefined {
    while (this.top < this.topKeys.length) {
      const field = this.topKeys[this.top]!;
      const captured = this.topCaptured.get(field);
      const value = captured === undefined ? this.root[field] : undefined;
      // As in read: a field that held an object at the pinned version is read from that object.
      const collection = this.collections.get(field) ?? (isRecord(value) ? this.collection(field, value) : undefined);
      if (captured === undefined && collection) {
        const keys = this.keysOf(collection);
        if (this.item === -1) {
          this.item = 0;
          return { field, key: undefined, json: '{}' };
        }
        if (this.item === keys.length) {
          this.item = -1;
          this.top++;
          this.collections.delete(field);
          continue;
        }
        const key = keys.at(this.item++)!;
        const itemCaptured = collection.captured.get(key);
        const json = itemCaptured === undefined ? JSON.stringify(collection.object[key]) : itemCaptured === ABSENT ? undefined : itemCaptured;
        if (json !== undefined) return { field, key, json };
        continue;
      }
      this.top++;
      const json = captured === undefined ? JSON.stringify(value) : captured === ABSENT ? undefined : captured;
      if (json !== undefined) return { field, key: undefined, json };
    }
    if (!this.done) {
      this.done = true;
      this.release();
    }
    return undefined;
  }

  /** Stops following the document's changes (reading is over, or abandoned). */
  release(): void {
    this.pins.remove(this);
  }

  /** The next step within the object-valued field `key`: its opening, one item, or its close. */
  private readItem(key: string, collection: PinnedCollection, sink: PinSink): void {
    const keys = this.keysOf(collection);
    if (this.item === -1) {
      this.item = 0;
      this.wroteItem = false;
      sink.text((this.wroteTop ? ',' : '') + JSON.stringify(key) + ':{');
      this.wroteTop = true;
      return;
    }
    if (this.item === keys.length) {
      this.item = -1;
      this.top++;
      this.collections.delete(key);
      sink.text('}');
      return;
    }
    const place = this.item++;
    const name = keys.at(place)!;
    const captured = collection.captured.get(name);
    const value = captured === undefined ? collection.object[name] : undefined;
    if (captured === ABSENT || (captured === undefined && value === undefined)) return;
    const comma = this.wroteItem;
    this.wroteItem = true;
    if (sink.item?.(key, place, name, comma)) return;
    sink.text((comma ? ',' : '') + JSON.stringify(name) + ':' + (captured ?? JSON.stringify(value)));
  }

  /** The pinned object behind an object-valued top-level field. */
  private collection(key: string, value: Json): PinnedCollection {
    let collection = this.collections.get(key);
    if (!collection) {
      collection = { field: key, object: value, keys: undefined, captured: new Map(), detached: false };
      this.collections.set(key, collection);
    }
    return collection;
  }

  /** The keys of a pinned field, taken now if not yet: before its first structural change, so those of the pinned version. */
  private keysOf(collection: PinnedCollection): KeyList {
    return (collection.keys ??= this.keySource?.(collection.field, collection.object) ?? Object.keys(collection.object));
  }

  /** Whether the top-level field `key` was read completely already. */
  private passed(key: string): boolean {
    if (this.top === 0) return false;
    if (!this.topPlace) this.topPlace = new Map(this.topKeys.map((name, place) => [name, place]));
    const place = this.topPlace.get(key);
    return place !== undefined && place < this.top;
  }
}

/**
 * The pins on documents of one state. The transaction tells them before every write; with none,
 * that costs a size check.
 */
export class Pins {
  private readonly byDoc = new Map<DocKey, Set<PinnedDoc>>();
  size = 0;

  /** Pins `root` (document `doc` at `version`) until it is read or released. */
  pin(doc: DocKey, root: object, version: number, keySource?: KeySource): PinnedDoc {
    const pinned = new PinnedDoc(this, doc, root as Json, version, keySource);
    let set = this.byDoc.get(doc);
    if (!set) this.byDoc.set(doc, (set = new Set()));
    set.add(pinned);
    this.size++;
    return pinned;
  }

  /** Tells the pins of `doc` that it is about to change at `path` (plus `key`). */
  beforeWrite(doc: DocKey, path: Path, key: string | undefined, structural: boolean): void {
    const set = this.byDoc.get(doc);
    if (set) for (const pinned of set) pinned.beforeWrite(path, key, structural);
  }

  /** Marks every pin as no longer describing its version (the writer rolled changes back) and drops them. */
  abortAll(reason: string): void {
    for (const set of this.byDoc.values()) for (const pinned of set) pinned.aborted = reason;
    this.byDoc.clear();
    this.size = 0;
  }

  /** Drops one pin. */
  remove(pinned: PinnedDoc): void {
    const set = this.byDoc.get(pinned.doc);
    if (!set?.delete(pinned)) return;
    this.size--;
    if (set.size === 0) this.byDoc.delete(pinned.doc);
  }
}
