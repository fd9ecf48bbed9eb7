/*
 * `await using client = await connectControl(...)` calls client[Symbol.asyncDispose](). Node 20 has
 * the symbol; some browsers (the dashboard loads the monitor client) do not yet. Where it is
 * missing, define it, as the registered symbol esbuild's `await using` helper falls back to (the
 * TypeScript helper reads Symbol.asyncDispose itself). Imported for this effect by every client.
 */
const symbols = Symbol as unknown as { asyncDispose?: symbol };
symbols.asyncDispose ??= Symbol.for('Symbol.asyncDispose');

export {};
