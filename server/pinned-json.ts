import { HubError } from '../shared/errors.ts';
import type { KeySource, PinnedDoc, PinnedUnit } from './domain/machinery/pins.ts';
import { AGENTS_DOC, docRoot, versionOf, type DocKey, type HubState } from './domain/machinery/state.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { TimeSlice } from './time-slice.ts';
import { partsOf } from './transport/transfers.ts';
import { SnapshotSink, type FileRange, type ItemReuse, type ItemSpans } from './store/item-spans.ts';

/** Characters of text encoded at a time. */
const SLICE_TEXT = 1 << 16;
/** Values (or units) read between two looks at the clock. */
const ITEMS_PER_LOOK = 32;
/** Text is joined into chunks of about this many bytes. */
const CHUNK_BYTES = 1 << 20;
/**
 * Lines are joined into smaller chunks: their reader encodes and hashes each chunk in the turn
 * that produced it, which for 1 MB took ~5 ms on top of the slice.
 */
const LINE_CHUNK_BYTES = 1 << 18;

/** A document's JSON (or its lines) at one version, produced in chunks over many turns of the event loop. */
export interface PinnedJson<R = never> {
  version: number;
  /** UTF-8 bytes, in order; each chunk an ArrayBuffer of its own (it may be transferred). Snapshots' chunks may also be ranges to copy. */
  chunks: AsyncIterable<Buffer | R>;
  /** Lets go of the document without reading it (reading to the end, or abandoning it, also does). */
  release(): void;
}

/**
 * The JSON text of document `doc` as it is now, serialised a slice of a few milliseconds per turn
 * while the writer goes on (see PinnedDoc), in chunks of about 1 MB. Abandoning the iteration
 * releases the document; a rollback meanwhile fails it with UNAVAILABLE.
 */
export function pinnedJson(state: HubState, doc: DocKey): PinnedJson {
  const pinned = pin(state, doc);
  const out: string[] = [];
  const sink = { text: (piece: string) => out.push(piece) };
  return inSlices<never>(pinned, CHUNK_BYTES, () => {
    out.length = 0;
    return pinned.readTo(ITEMS_PER_LOOK, sink) ? out : undefined;
  });
}

/** A document's JSON for a snapshot: UTF-8 chunks and ranges of the snapshot on disk to copy, then where its items lie. */
export interface SnapshotJson extends PinnedJson<FileRange> {
  /** Once the chunks were read: where each item lies in the text, and how many were copied and serialised. */
  items(): { spans: ItemSpans; copied: number; serialised: number };
}

/**
 * pinnedJson for a snapshot: the items `reuse` says are unchanged since the snapshot on disk come
 * as ranges of that file instead of being serialised again (see SnapshotSink).
 */
export function pinnedSnapshotJson(state: HubState, doc: DocKey, reuse: ItemReuse | undefined): SnapshotJson {
  const pinned = pin(state, doc);
  const sink = new SnapshotSink(reuse);
  const source = inSlices<FileRange>(pinned, CHUNK_BYTES, () => (pinned.readTo(ITEMS_PER_LOOK, sink) ? sink.take() : undefined));
  return { ...source, items: () => ({ spans: sink.spans, copied: sink.copied, serialised: sink.serialised }) };
}

/**
 * Document `doc` as it is now, one `line(unit)` per unit (see PinnedDoc.readUnit), produced as
 * pinnedJson produces its text (in slices), in chunks of about 256 KB.
 */
export function pinnedLines(state: HubState, doc: DocKey, line: (unit: PinnedUnit) => string): PinnedJson {
  const pinned = pin(state, doc);
  const out: string[] = [];
  return inSlices<never>(pinned, LINE_CHUNK_BYTES, () => {
    out.length = 0;
    for (let count = 0; count < ITEMS_PER_LOOK; count++) {
      const unit = pinned.readUnit();
      if (unit === undefined) break;
      out.push(line(unit));
    }
    return out.length > 0 ? out : undefined;
  });
}

/** Pins document `doc` at its current version. */
function pin(state: HubState, doc: DocKey): PinnedDoc {
  const root = docRoot(state, doc);
  if (root === undefined) throw new HubError('NOT_FOUND', `document ${doc} does not exist`);
  // A workflow's orders in the order the index keeps them: Object.keys of 100,000 took ~14 ms.
  const workflow = doc === AGENTS_DOC ? undefined : (root as unknown as Workflow);
  const keySource: KeySource | undefined = workflow && ((field) => (field === 'workOrders' ? state.work.orderLists.of(workflow).snapshot() : undefined));
  return state.pins.pin(doc, root, versionOf(state, doc), keySource);
}

/**
 * Runs `next` (the next pieces: text, or things to hand out as they are; undefined at the end) a
 * few milliseconds per turn. Text becomes UTF-8 bytes every SLICE_TEXT characters and at the end
 * of each turn, so no string outlives a turn (pieces of a long-lived growing string survived
 * scavenges, which then took 15-30 ms) and none grows big (encoding a string built by `+=` from
 * thousands of pieces took 20-58 ms); the bytes are joined into chunks of about `chunkBytes`.
 */
function inSlices<R extends object>(pinned: PinnedDoc, chunkBytes: number, next: () => ReadonlyArray<string | R> | undefined): PinnedJson<R> {
  async function* chunks(): AsyncGenerator<Buffer | R> {
    try {
      let held: Buffer[] = [];
      let heldBytes = 0;
      let pieces: string[] = [];
      let length = 0;
      const encode = () => {
        const bytes = Buffer.from(pieces.join(''));
        pieces = [];
        length = 0;
        held.push(bytes);
        heldBytes += bytes.length;
      };
      const slice = new TimeSlice();
      // A pin aborted before its first read (a rollback since it was taken) no longer describes its version either.
      if (pinned.aborted) throw new HubError('UNAVAILABLE', `${pinned.aborted}; read again`);
      for (let read = next(); read !== undefined; read = next()) {
        for (const piece of read) {
          if (typeof piece === 'string') {
            pieces.push(piece);
            length += piece.length;
            if (length >= SLICE_TEXT) encode();
            continue;
          }
          // What is handed out as it is goes after the text before it.
          if (length > 0) encode();
          if (held.length) yield Buffer.concat(held, heldBytes);
          held = [];
          heldBytes = 0;
          yield piece;
          // Copying the range may have let other turns run: a rollback meanwhile ends the pin, as at a slice's end.
          if (pinned.aborted) throw new HubError('UNAVAILABLE', `${pinned.aborted}; read again`);
        }
        if (!slice.spent) continue;
        if (length > 0) encode();
        if (heldBytes >= chunkBytes) {
          yield Buffer.concat(held, heldBytes);
          held = [];
          heldBytes = 0;
        }
        await slice.next();
        if (pinned.aborted) throw new HubError('UNAVAILABLE', `${pinned.aborted}; read again`);
      }
      if (length > 0) encode();
      if (held.length) yield Buffer.concat(held, heldBytes);
    } finally {
      pinned.release();
    }
  }
  return { version: pinned.version, chunks: chunks(), release: () => pinned.release() };
}

/** Serialisations under way for sharedJsonParts, per state (the hub's, or an archived workflow's) and document. */
const underWay = new WeakMap<HubState, Map<DocKey, { root: unknown; version: number; result: Promise<{ version: number; parts: Buffer[] }> }>>();

/**
 * pinnedJsonParts, shared by every read of `doc` at its current version while it runs: each read
 * held a whole copy until its transfer was offered, so a burst of them could exhaust the heap.
 */
export function sharedJsonParts(state: HubState, doc: DocKey): Promise<{ version: number; parts: Buffer[] }> {
  let docs = underWay.get(state);
  if (!docs) underWay.set(state, (docs = new Map()));
  const root = docRoot(state, doc);
  const version = versionOf(state, doc);
  const running = docs.get(doc);
  if (running && running.root === root && running.version === version) return running.result;
  const entry = { root, version, result: pinnedJsonParts(state, doc) };
  docs.set(doc, entry);
  const done = () => void (docs.get(doc) === entry && docs.delete(doc));
  entry.result.then(done, done);
  return entry.result;
}

/** A document's JSON at one version as UTF-8 parts of at most 1 MB, serialised in slices. */
export async function pinnedJsonParts(state: HubState, doc: DocKey): Promise<{ version: number; parts: Buffer[] }> {
  const { version, chunks } = pinnedJson(state, doc);
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(...partsOf(chunk));
  return { version, parts };
}
