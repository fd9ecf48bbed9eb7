/**
 * Node flags a hub process should run with; `switchboard start` (the bin's shebang and
 * `npm start`) uses them, and so does the benchmark's hub.
 *
 * A young generation of 64 MB semi-spaces instead of 16: at 10k progress updates/s the hub
 * allocates ~180 MB/s, so with the default a scavenge ran every ~80 ms and promoted the objects
 * of requests in flight and of work orders updated in between (~7 MB/s), which ended in a 13–19 ms
 * mark-compact every ~14 s. At 80 % of a core, such a pause took 40–80 ms to work off and set the
 * ack p99. With 64 MB no mark-compact ran in a whole progress benchmark (BENCHMARKS.md, findings).
 */
export const HUB_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
