/**
 * The order JavaScript lists an object's keys in, which is the order a document keeps once it has
 * been through JSON (a snapshot, the archive): keys that are array indexes first, ascending, then
 * the others in the order they were added. Indexes that list a document's items keep to it, so
 * that what they answer does not change when the document is read back.
 */

/** True when `key` is an array index ("0" to "4294967294", no leading zero), which JavaScript lists first. */
export function isArrayIndex(key: string): boolean {
  return /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < 2 ** 32 - 1;
}

/** Where the item with key `key` (an array index) is in `items`, sorted by their array-index keys, or where it would go. */
export function arrayIndexPlace<T>(items: readonly T[], key: string, keyOf: (item: T) => string): number {
  const value = Number(key);
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (Number(keyOf(items[middle]!)) < value) low = middle + 1;
    else high = middle;
  }
  return low;
}
