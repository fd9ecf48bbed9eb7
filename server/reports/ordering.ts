/**
 * Orderings for reports. Record key order depends on how a document was built (commands,
 * snapshot, journal replay), so reports never rely on it: every list is sorted explicitly.
 */

/** Compares strings by UTF-16 code units: the same everywhere, unlike localeCompare. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Oldest first, then by id; a missing creation time sorts first. */
export function byCreatedThenId(a: { createdAt: number | null; id: string }, b: { createdAt: number | null; id: string }): number {
  return (a.createdAt ?? -1) - (b.createdAt ?? -1) || compareText(a.id, b.id);
}

/** The values of a record, oldest first, then by id. */
export function sortedByCreation<T extends { createdAt: number; id: string }>(record: Record<string, T>): T[] {
  return Object.values(record).sort(byCreatedThenId);
}
