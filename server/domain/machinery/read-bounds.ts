/**
 * How many items one page of a filtered list may look at. A filter few items match would
 * otherwise walk a whole workflow for one page; past this many, the page ends short with a
 * cursor that says "keep going", so one request holds the event loop for a bounded time.
 */
export const EXAMINED_PER_PAGE = 5_000;

/**
 * How many links (a run and one reference it leads to) one lineage walk may follow: past them it
 * stops and says it was truncated, however few of them it could return (a reference read by
 * thousands of runs whose outputs were all met already).
 */
export const FOLLOWED_PER_WALK = 50_000;
