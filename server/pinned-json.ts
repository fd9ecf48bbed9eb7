import { setImmediate as nextTurn } from 'node:timers/promises';
import { HubError } from '../shared/errors.ts';
import { docRoot, versionOf, type DocKey, type HubState } from './domain/machinery/state.ts';
import { partsOf } from './transport/transfers.ts';

/** How long one slice of serialising may hold the event loop (ms). */
const SLICE_MS = 3;
/** Values read between two looks at the clock. */
const ITEMS_PER_LOOK = 32;
/** Pieces are joined into chunks of about this many characters. */
const CHUNK_CHARS = 1 << 20;

/** A document's JSON at one version, produced in chunks over many turns of the event loop. */
export interface PinnedJson {
  version: number;
  chunks: AsyncIterable<string>;
  /** Lets go of the document without reading it (reading to the end, or abandoning it, also does). */
  release(): void;
}

/**
 * The JSON text of document `doc` as it is now, serialised a slice of a few milliseconds per turn
 * while the writer goes on (see PinnedDoc), in chunks of about 1 MB. Abandoning the iteration
 * releases the document; a rollback meanwhile fails it with UNAVAILABLE.
 */
export function pinnedJson(state: HubState, doc: DocKey): PinnedJson {
  const root = docRoot(state, doc);
  if (root === undefined) throw new HubError('NOT_FOUND', `document ${doc} does not exist`);
  const pinned = state.pins.pin(doc, root, versionOf(state, doc));
  async function* chunks(): AsyncGenerator<string> {
    try {
      let chunk = '';
      let sliceStart = performance.now();
      for (let piece = pinned.read(ITEMS_PER_LOOK); piece !== undefined; piece = pinned.read(ITEMS_PER_LOOK)) {
        chunk += piece;
        if (chunk.length >= CHUNK_CHARS) {
          yield chunk;
          chunk = '';
        }
        if (performance.now() - sliceStart < SLICE_MS) continue;
        await nextTurn();
        if (pinned.aborted) throw new HubError('UNAVAILABLE', `${pinned.aborted}; read again`);
        sliceStart = performance.now();
      }
      if (chunk) yield chunk;
    } finally {
      pinned.release();
    }
  }
  return { version: pinned.version, chunks: chunks(), release: () => pinned.release() };
}

/** A document's JSON at one version as UTF-8 parts of at most 1 MB, serialised in slices. */
export async function pinnedJsonParts(state: HubState, doc: DocKey): Promise<{ version: number; parts: Buffer[] }> {
  const { version, chunks } = pinnedJson(state, doc);
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(...partsOf(Buffer.from(chunk)));
  return { version, parts };
}
