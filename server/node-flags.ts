/**
 * Node flags a hub process should run with; `switchboard start` (the bin's shebang and
 * `npm start`) uses them, and so does the benchmark's hub.
 *
 * `--no-allocation-site-pretenuring`: V8 allocates an allocation site's objects straight in the
 * old generation once most of them outlived a scavenge. In the hub that happened to the objects of
 * a request (parsed payload, patch ops, journal record) while a burst kept a thousand requests
 * in flight, and stayed so afterwards: at a steady 10k updates/s the old generation then grew
 * ~9 MB/s of dead requests and a 12–20 ms mark-compact ran every ~7 s, which at 80 % of a core
 * took 40–80 ms to work off and set the ack p99. Without pretenuring it grew ~0.3 MB/s.
 * (A 64 MB young generation hid it too, but made the scavenges of the assignment path twice as
 * long.) See BENCHMARKS.md, findings.
 */
export const HUB_NODE_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];
