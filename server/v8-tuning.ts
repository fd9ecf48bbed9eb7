import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings for a process that is a hub: `switchboard start` applies them once the state is
 * loaded. `createHub` leaves an embedding process's flags alone; the embedder may call tuneV8ForHub.
 *
 * `--no-allocation-site-pretenuring`: V8 allocates an allocation site's objects straight in the
 * old generation once most of them outlived a scavenge. In the hub that happened to the objects of
 * a request (parsed payload, patch ops, journal record) while a burst kept a thousand requests
 * in flight, and stayed so afterwards: at a steady 10k updates/s the old generation then grew
 * ~9 MB/s of dead requests and a 12–20 ms mark-compact ran every ~7 s, which at 80 % of a core
 * took 40–80 ms to work off and set the ack p99. Without pretenuring it grew ~0.3 MB/s.
 * (A 64 MB young generation hid it too, but made the assignment path's scavenges twice as long.)
 *
 * `--heap-growing-percent=100`: after a mark-compact the old generation may double before the
 * next. The hub keeps every order (~2.6 KB each), so at 500 orders/s its old generation grew
 * steadily and V8's own limit brought a mark-compact every ~4 s; each (4–17 ms here) left a
 * backlog that set the assignment p99. With it, 6 against 17 mark-compacts fell in the hub's
 * measured rounds of five alternated pairs of runs. The price: up to twice the live heap before
 * a full collection.
 *
 * Both flags are read at every collection, so setting them at run time takes effect (a traced run
 * with this setting had 1 mark-compact in the hub's measured rounds, as with the flag given to
 * node). See BENCHMARKS.md, finding 22.
 */
export const HUB_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring', '--heap-growing-percent=100'];

/** Applies HUB_V8_FLAGS to this process (idempotent). */
export function tuneV8ForHub(): void {
  for (const flag of HUB_V8_FLAGS) setFlagsFromString(flag);
}
