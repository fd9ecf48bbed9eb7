import { ALL_ITEMS, changedIn, type DocChanges } from '../domain/machinery/changed-items.ts';
import type { PinSink } from '../domain/machinery/pins.ts';

/**
 * Where the items of one object-valued field lie in a document's JSON text in a snapshot file: at
 * each place among the field's keys, the key, and the bytes [start, end) of its `"key":value` from
 * the start of the document's JSON (-1 where it had no text).
 */
export interface FieldSpans {
  keys: string[];
  starts: number[];
  ends: number[];
}

/** A document's FieldSpans, by field. */
export type ItemSpans = Map<string, FieldSpans>;

/** Bytes [start, end) of the snapshot file on disk. */
export interface FileRange {
  start: number;
  end: number;
}

/** What a snapshot may take from the one on disk for a document that changed: where its items lie there, and which were written since. */
export interface ItemReuse {
  /** Where the document's JSON starts in that file. */
  json: number;
  items: ItemSpans;
  /** What was written since that snapshot was pinned (undefined: nothing). */
  changes: DocChanges | undefined;
}

/**
 * The PinSink of a document written into a snapshot: the text of items unchanged since the
 * snapshot on disk is copied from that file (consecutive items as one range), the others are
 * serialised; either way it notes where each item lands, for the snapshot after.
 */
export class SnapshotSink implements PinSink {
  /** What was read since the last `take`: text, and ranges of the file on disk. */
  private out: Array<string | FileRange> = [];
  /** Where the items of the document being written lie. */
  readonly spans: ItemSpans = new Map();
  copied = 0;
  serialised = 0;
  /** Bytes of the document's JSON so far. */
  private offset = 0;
  /** The copy not yet handed out: following items extend it. */
  private run: FileRange | undefined;
  /** The field being read, its spans being written, and what the file on disk has of it. */
  private field: string | undefined;
  private spansHere: FieldSpans | undefined;
  private oldHere: FieldSpans | undefined;
  private changedHere: ReadonlySet<string> | undefined;
  /** The place of the item whose text is the next piece (-1: none), and whether a comma leads it. */
  private pending = -1;
  private pendingComma = false;

  constructor(private readonly reuse: ItemReuse | undefined) {}

  text(piece: string): void {
    this.endRun();
    const bytes = Buffer.byteLength(piece);
    if (this.pending >= 0) {
      const start = this.offset + (this.pendingComma ? 1 : 0);
      this.place(this.pending, start, this.offset + bytes);
      this.pending = -1;
      this.serialised++;
    }
    this.offset += bytes;
    this.out.push(piece);
  }

  item(field: string, place: number, key: string, comma: boolean): boolean {
    if (field !== this.field) this.enter(field);
    const spans = this.spansHere!;
    while (spans.keys.length < place) spans.keys.push(''), spans.starts.push(-1), spans.ends.push(-1);
    spans.keys.push(key);
    const old = this.oldHere;
    const start = old && old.keys[place] === key && !this.changedHere?.has(key) ? old.starts[place]! : -1;
    if (start < 0) {
      this.pending = place;
      this.pendingComma = comma;
      return false;
    }
    const from = this.reuse!.json + start;
    const to = this.reuse!.json + old!.ends[place]!;
    if (comma && this.run && this.run.end + 1 === from) this.run.end = to;
    else {
      this.endRun();
      if (comma) this.out.push(',');
      this.run = { start: from, end: to };
    }
    if (comma) this.offset++;
    this.place(place, this.offset, this.offset + to - from);
    this.offset += to - from;
    this.copied++;
    return true;
  }

  /**
   * What was read since the last take, in order. A copy still growing stays for the next take: the
   * text that follows it (at the latest its field's closing brace) hands it out, so a run of
   * unchanged items is one range however many reads it spans.
   */
  take(): ReadonlyArray<string | FileRange> {
    const out = this.out;
    this.out = [];
    return out;
  }

  private place(place: number, start: number, end: number): void {
    this.spansHere!.starts.push(start);
    this.spansHere!.ends.push(end);
    if (this.spansHere!.starts.length !== place + 1) throw new Error(`item ${place} of ${this.field} placed out of order`);
  }

  private enter(field: string): void {
    this.endRun();
    this.field = field;
    this.spans.set(field, (this.spansHere = { keys: [], starts: [], ends: [] }));
    const changed = this.reuse && changedIn(this.reuse.changes, field);
    this.oldHere = changed === ALL_ITEMS ? undefined : this.reuse?.items.get(field);
    this.changedHere = changed === ALL_ITEMS ? undefined : changed;
  }

  private endRun(): void {
    if (!this.run) return;
    this.out.push(this.run);
    this.run = undefined;
  }
}
