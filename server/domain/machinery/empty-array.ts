/**
 * The one empty array the state's documents share: a work order holds six that mostly stay empty,
 * and each of its own would be one more object for every full collection to mark. Frozen: the
 * Transaction gives an array its first element in an array of its own.
 */
export const EMPTY_ARRAY: readonly unknown[] = Object.freeze([]);

/** Puts the shared empty array in place of each empty array among `object`'s own fields (a document loaded from disk). */
export function shareEmptyArrays(object: Record<string, unknown>): void {
  for (const key in object) {
    const value = object[key];
    if (Array.isArray(value) && value.length === 0) object[key] = EMPTY_ARRAY;
  }
}
