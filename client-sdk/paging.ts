/** One page of a list reply: its items and the cursor of the next page (null on the last). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * Yields every item of a paged list, asking for the next page only when the previous one is used
 * up, so a caller that stops early (break, return, throw) asks for no more pages. Only a null
 * `nextCursor` ends the list: the hub bounds the work of one page, so a filtered page may be
 * short, or empty, with more to come.
 * @example for await (const order of pages((cursor) => list({ cursor }))) console.log(order.id);
 */
export async function* pages<T>(page: (cursor: string | undefined) => Promise<Page<T>>): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  do {
    const { items, nextCursor } = await page(cursor);
    yield* items;
    cursor = nextCursor ?? undefined;
  } while (cursor !== undefined);
}
