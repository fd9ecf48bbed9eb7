import { escapeSegment, toPointer, type PatchOp } from '../../../shared/patch.ts';
import { CompactableDocs } from './compactable-docs.ts';
import { EMPTY_ARRAY } from './empty-array.ts';
import { docRoot, dropDoc, putDoc, versionOf, type DocKey, type HubState } from './state.ts';

type Path = ReadonlyArray<string | number>;
/** Where isolate() returns to: the undo log's and effects' lengths, and each doc's ops as they were when first touched after it. */
interface Savepoint {
  undos: number;
  effects: number;
  ops: Map<DocKey, { ops: PatchOp[] | undefined; length: number }>;
}
type Container = Record<string, unknown> | unknown[];

/** A plain deep copy of a JSON value, so that state never shares objects with emitted patches (empty arrays excepted: EMPTY_ARRAY cannot change). */
export function copyJson<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return (value.length === 0 ? EMPTY_ARRAY : value.map(copyJson)) as T;
  // A spread copies own keys into an object with fast properties. Built key by key, an object of
  // more than a dozen keys (a work order) would turn into a hash table three times its size, kept
  // for as long as the order and marked by every full collection.
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  // for-in, not Object.keys: no array of keys per copy. A spread object inherits no enumerable key.
  for (const key in out) {
    const item = out[key];
    if (item === undefined) return copyDroppingUndefined(value as Record<string, unknown>) as T;
    if (typeof item === 'object' && item !== null) out[key] = copyJson(item);
  }
  return out as T;
}

/** copyJson of an object with `undefined` fields, which JSON does not hold. */
function copyDroppingUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return copyJson(Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)));
}

/** Deep equality of two JSON values (objects compared by their serialisation, which is small here). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** What an undo-log entry reverts, by its three operands. */
const Undo = {
  /** (object, key, old value): the key held old. */
  Field: 0,
  /** (object, key, —): the key was added. */
  NewField: 1,
  /** (array, index, old value): the element was replaced. */
  Element: 2,
  /** (array, index, old value): the element was removed. */
  Removed: 3,
  /** (array, —, —): an element was appended. */
  Appended: 4,
  /** (versions, doc, the version before, or undefined). */
  Version: 5,
  /** (function, —, —): a runtime change's own undo. */
  Call: 6,
} as const;
type Undo = (typeof Undo)[keyof typeof Undo];

/** Reverts one undo-log entry. */
function undo(kind: Undo, a: unknown, b: unknown, c: unknown): void {
  switch (kind) {
    case Undo.Field:
      (a as Record<string, unknown>)[b as string] = c;
      return;
    case Undo.NewField:
      delete (a as Record<string, unknown>)[b as string];
      return;
    case Undo.Element:
      (a as unknown[])[b as number] = c;
      return;
    case Undo.Removed:
      (a as unknown[]).splice(b as number, 0, c);
      return;
    case Undo.Appended:
      (a as unknown[]).pop();
      return;
    case Undo.Version:
      if (c === undefined) (a as Map<DocKey, number>).delete(b as DocKey);
      else (a as Map<DocKey, number>).set(b as DocKey, c as number);
      return;
    case Undo.Call:
      (a as () => void)();
  }
}

/**
 * Records one command's changes. Every write goes through here: it mutates the state in place,
 * records the RFC 6902 op per document, bumps each touched document's version once, and keeps an
 * undo so that the whole command (or a batch of commands) can be rolled back if it fails or its
 * journal write fails. Cost is proportional to the change, never to the size of the state.
 */
export class Transaction<E = unknown> {
  /** Ops per touched document, in the order they were made. */
  readonly changes = new Map<DocKey, PatchOp[]>();
  /** Things to do once the change is committed (push an assignment, ...). */
  readonly effects: E[] = [];
  /**
   * The undo log, flat: [kind, a, b, c] per entry (see Undo). Entries, not closures: a closure and
   * its context per write would be allocated on every command's hot path and kept until its batch is written.
   */
  private readonly undos: unknown[] = [];
  /** The open savepoints of isolate(), innermost last. */
  private readonly savepoints: Savepoint[] = [];
  /**
   * Which documents' ops compactOps could shorten, as the writes go; only for a transaction told to
   * (trackCompaction): the notes cost every write of a lifecycle's commands about as much as the
   * compaction of their few ops they would spare.
   */
  private compactable: CompactableDocs | undefined;

  constructor(private readonly state: HubState) {}

  /**
   * Notes from now on which documents' ops may compact (mayCompact), for a command that writes
   * thousands of ops (a start, a cancel, a createMany). Only before the first write: the notes must
   * see every write.
   */
  trackCompaction(): void {
    if (this.changes.size === 0) this.compactable ??= new CompactableDocs((doc) => docRoot(this.state, doc));
  }

  /** True when nothing was changed. */
  get empty(): boolean {
    return this.changes.size === 0;
  }

  /** The version `doc` is at, counting this transaction's change. */
  version(doc: DocKey): number {
    return versionOf(this.state, doc);
  }

  /**
   * Whether compactOps (folding too) could shorten `doc`'s ops; false when the writes were noted
   * (trackCompaction) and none wrote at a path an op wrote before it, nor below a container an op
   * wrote whole (CompactableDocs).
   */
  mayCompact(doc: DocKey): boolean {
    return this.compactable?.has(doc) ?? true;
  }

  /** Queues an effect to run after commit. */
  effect(effect: E): void {
    this.effects.push(effect);
  }

  /** Creates (or replaces) a whole document. */
  putDoc(doc: DocKey, value: object): void {
    const previous = docRoot(this.state, doc);
    // Also for a new document: one dropped under the same key may still be pinned, and it changes whole.
    this.beforeWrite(doc, [], undefined, true);
    const copy = copyJson(value);
    putDoc(this.state, doc, copy);
    this.compactable?.wroteWhole(copy);
    this.onUndo(() => (previous === undefined ? dropDoc(this.state, doc) : putDoc(this.state, doc, previous)));
    this.record(doc, { op: previous === undefined ? 'add' : 'replace', path: '', value });
  }

  /**
   * Takes a whole document out of memory (it was archived). Its version is not bumped: the
   * document lives on, unchanged, in the archive. The record's root `remove` deletes it on replay.
   */
  dropDoc(doc: DocKey): void {
    const previous = docRoot(this.state, doc);
    if (previous === undefined) return;
    this.beforeWrite(doc, [], undefined, true);
    const version = this.state.versions.get(doc);
    dropDoc(this.state, doc);
    this.state.versions.delete(doc);
    this.onUndo(() => {
      putDoc(this.state, doc, previous);
      if (version !== undefined) this.state.versions.set(doc, version);
    });
    if (this.savepoints.length > 0) this.noteOps(doc);
    this.changes.set(doc, [{ op: 'remove', path: '' }]);
  }

  /** Sets `path` in `doc` to `value` (an object key or an existing array index). */
  set(doc: DocKey, path: Path, value: unknown): void {
    const { parent, key } = this.locate(doc, path);
    if (Array.isArray(parent)) {
      this.beforeWrite(doc, path, undefined, false);
      const index = Number(key);
      const old = parent[index];
      const copy = copyJson(value);
      parent[index] = copy;
      // An element's path holds an index, which compactOps leaves alone, unless a container above the array was written whole.
      this.compactable?.wroteBelow(doc, path, path.length - 1);
      this.undos.push(Undo.Element, parent, index, old);
      this.record(doc, { op: 'replace', path: toPointer(path), value });
      return;
    }
    const had = Object.hasOwn(parent, key);
    this.beforeWrite(doc, path, undefined, !had);
    const old = parent[key];
    const copy = copyJson(value);
    parent[key] = copy;
    this.compactable?.wroteKeys(doc, path, path.length - 1, parent, key);
    this.compactable?.wroteWhole(copy);
    this.undos.push(had ? Undo.Field : Undo.NewField, parent, key, old);
    this.record(doc, { op: had ? 'replace' : 'add', path: toPointer(path), value });
  }

  /** Sets several fields of the object at `path` at once; fields equal to their current value are skipped. */
  assign(doc: DocKey, path: Path, fields: Record<string, unknown>): void {
    const target = this.resolve(doc, path) as Record<string, unknown>;
    if (Array.isArray(target)) {
      for (const [key, value] of Object.entries(fields)) if (value !== undefined && !sameJson(target[key], value)) this.set(doc, [...path, key], value);
      return;
    }
    // The hot path (progress, state changes): the object is found once and its pointer built once.
    let base: string | undefined;
    for (const key in fields) {
      const value = fields[key];
      if (value === undefined || !Object.hasOwn(fields, key) || sameJson(target[key], value)) continue;
      base ??= toPointer(path);
      const had = Object.hasOwn(target, key);
      this.beforeWrite(doc, path, key, !had);
      const old = target[key];
      const copy = copyJson(value);
      target[key] = copy;
      this.compactable?.wroteWhole(copy);
      this.undos.push(had ? Undo.Field : Undo.NewField, target, key, old);
      this.record(doc, { op: had ? 'replace' : 'add', path: `${base}/${escapeSegment(key)}`, value });
    }
    if (base !== undefined) this.compactable?.wroteKeys(doc, path, path.length, target, fields);
  }

  /** Registers how to revert a runtime change (one outside the documents) made by this command. */
  onUndo(undo: () => void): void {
    this.undos.push(Undo.Call, undo, undefined, undefined);
  }

  /** Removes the object key or array element at `path`. */
  remove(doc: DocKey, path: Path): void {
    const { parent, key } = this.locate(doc, path);
    if (Array.isArray(parent)) {
      this.beforeWrite(doc, path, undefined, true);
      const index = Number(key);
      const [old] = parent.splice(index, 1);
      this.compactable?.wroteBelow(doc, path, path.length - 1);
      this.undos.push(Undo.Removed, parent, index, old);
    } else {
      if (!Object.hasOwn(parent, key)) return;
      this.beforeWrite(doc, path, undefined, true);
      const old = parent[key];
      delete parent[key];
      this.compactable?.wroteKeys(doc, path, path.length - 1, parent, key);
      this.undos.push(Undo.Field, parent, key, old);
    }
    this.record(doc, { op: 'remove', path: toPointer(path) });
  }

  /** Appends `value` to the array at `path`. */
  append(doc: DocKey, path: Path, value: unknown): void {
    const { parent, key } = this.locate(doc, path);
    // Own properties only, as resolve: a path never leads into a prototype.
    const array = Object.hasOwn(parent, key) ? (parent as Record<string, unknown>)[key] : undefined;
    if (!Array.isArray(array)) throw new Error(`not an array: ${toPointer(path)}`);
    this.beforeWrite(doc, path, undefined, false);
    const index = array.length;
    const copy = copyJson(value);
    if (array === EMPTY_ARRAY) {
      (parent as Record<string, unknown>)[key] = [copy];
      this.undos.push(Undo.Field, parent, key, EMPTY_ARRAY);
    } else {
      array.push(copy);
      this.undos.push(Undo.Appended, array, undefined, undefined);
    }
    // The element's path holds an index, which compactOps leaves alone, unless a container down to the array was written whole.
    this.compactable?.wroteBelow(doc, path, path.length);
    this.record(doc, { op: 'add', path: toPointer([...path, index]), value });
  }

  /** Reverts every change of this transaction, newest first. */
  rollback(): void {
    this.undoTo(0);
  }

  /**
   * Runs `change` as a savepoint: if it throws, its own writes, ops and effects are undone, those
   * made before it kept, and the error is returned. Runtime changes without an onUndo are not
   * reverted: the caller rebuilds what derives from the documents.
   */
  isolate<T>(change: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
    const savepoint: Savepoint = { undos: this.undos.length, effects: this.effects.length, ops: new Map() };
    this.savepoints.push(savepoint);
    try {
      return { ok: true, value: change() };
    } catch (error) {
      const wrote = this.undos.length > savepoint.undos;
      this.undoTo(savepoint.undos);
      this.effects.length = savepoint.effects;
      for (const [doc, { ops, length }] of savepoint.ops) {
        if (ops === undefined) this.changes.delete(doc);
        else {
          ops.length = length;
          this.changes.set(doc, ops);
        }
      }
      // As after a failed command (StateWriter.apply): a pin may have let go of what was restored.
      if (wrote && this.state.pins.size > 0) this.state.pins.abortAll('a change that failed was undone');
      return { ok: false, error };
    } finally {
      this.savepoints.pop();
    }
  }

  /** Reverts the undo log's entries from `mark` on, newest first. */
  private undoTo(mark: number): void {
    const log = this.undos;
    for (let i = log.length - 4; i >= mark; i -= 4) undo(log[i] as Undo, log[i + 1], log[i + 2], log[i + 3]);
    log.length = mark;
  }

  /** Notes, for each open savepoint that has not yet, the ops `doc` had before it changes. */
  private noteOps(doc: DocKey): void {
    for (const savepoint of this.savepoints) {
      if (savepoint.ops.has(doc)) continue;
      const ops = this.changes.get(doc);
      savepoint.ops.set(doc, { ops, length: ops?.length ?? 0 });
    }
  }

  /** Lets readers holding `doc` at an earlier version keep what is about to change (see PinnedDoc), and notes the write for snapshots. */
  private beforeWrite(doc: DocKey, path: Path, key: string | undefined, structural: boolean): void {
    this.state.changed.note(doc, path, key);
    const pins = this.state.pins;
    if (pins.size > 0) pins.beforeWrite(doc, path, key, structural);
  }

  private record(doc: DocKey, op: PatchOp): void {
    if (this.savepoints.length > 0) this.noteOps(doc);
    let ops = this.changes.get(doc);
    if (!ops) {
      ops = [];
      this.changes.set(doc, ops);
      const before = this.state.versions.get(doc);
      this.state.versions.set(doc, (before ?? 0) + 1);
      this.undos.push(Undo.Version, this.state.versions, doc, before);
    }
    ops.push(op);
  }

  /** The container at the first `depth` segments of `path` (all of them unless told) in `doc`; throws when they do not lead to one. */
  private resolve(doc: DocKey, path: Path, depth = path.length): Container {
    let node: unknown = docRoot(this.state, doc);
    for (let i = 0; i < depth; i++) {
      const segment = path[i]!;
      // Own properties only: a path never leads into a prototype.
      if (typeof node !== 'object' || node === null || !Object.hasOwn(node, segment)) {
        node = undefined;
        break;
      }
      node = (node as Record<string, unknown>)[segment as string];
    }
    if (typeof node !== 'object' || node === null) throw new Error(`path not found in ${doc}: ${toPointer(path.slice(0, depth))}`);
    return node as Container;
  }

  private locate(doc: DocKey, path: Path): { parent: Container; key: string } {
    return { parent: this.resolve(doc, path, path.length - 1), key: String(path[path.length - 1]) };
  }
}
