import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings for a process that is a hub: `switchboard start` applies them once the state is
 * loaded. `createHub` leaves an embedding process's flags alone; the embedder may call tuneV8ForHub.
 *
 * `--no-allocation-site-pretenuring`: V8 allocates an allocation site's objects straight in the
 * old generation once most of them outlived a scavenge. In the hub that happened to the objects of
 * a request (parsed payload, patch ops, journal record) while a burst kept a thousand requests
 * in flight, and stayed so afterwards: under steady load the old generation then filled with dead
 * requests, and the mark-compacts collecting them set the ack p99.
 *
 * `--heap-growing-percent=100`: after a mark-compact the old generation may double before the
 * next. The hub keeps every order (~1 KB of heap each), so its old generation grows steadily, and each
 * mark-compact leaves a backlog that sets the assignment p99: fewer of them, a shorter tail. The
 * price: up to twice the live heap before a full collection.
 *
 * Both flags are read at every collection, so setting them at run time takes effect.
 * BENCHMARKS.md ("What costs what") has the figures.
 */
export const HUB_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring', '--heap-growing-percent=100'];

/** Applies HUB_V8_FLAGS to this process (idempotent). */
export function tuneV8ForHub(): void {
  for (const flag of HUB_V8_FLAGS) setFlagsFromString(flag);
}
