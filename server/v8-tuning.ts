import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings the hub applies to its process once its state is loaded (`createHub`).
 *
 * `--no-allocation-site-pretenuring`: V8 allocates an allocation site's objects straight in the
 * old generation once most of them outlived a scavenge. In the hub that happened to the objects of
 * a request (parsed payload, patch ops, journal record) while a burst kept a thousand requests
 * in flight, and stayed so afterwards: at a steady 10k updates/s the old generation then grew
 * ~9 MB/s of dead requests and a 12–20 ms mark-compact ran every ~7 s, which at 80 % of a core
 * took 40–80 ms to work off and set the ack p99. Without pretenuring it grew ~0.3 MB/s.
 * (A 64 MB young generation hid it too, but made the assignment path's scavenges twice as long.)
 * The flag is read at every collection, so setting it at run time takes effect. See BENCHMARKS.md.
 */
export const HUB_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

/** Applies HUB_V8_FLAGS to this process (idempotent). */
export function tuneV8ForHub(): void {
  for (const flag of HUB_V8_FLAGS) setFlagsFromString(flag);
}
