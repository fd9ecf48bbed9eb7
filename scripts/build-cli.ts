// Part of `npm run build`, after tsc: the CLI and its dependencies as one ES module, dist/cli.mjs,
// which bin/switchboard.mjs runs. Node starts it in about two thirds of the time it takes to load
// the ~80 compiled modules and the ~200 files of dependencies they import (issue 19).
// The libraries (switchboard/server, switchboard/client) stay tsc's output in dist/.
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * In a bundled source, `import.meta.url` is the URL of its tsc-compiled twin in dist/ (the bundle
 * sits in dist/, where tsc writes `x.ts` as `x.js`), so what a module finds beside itself, the
 * dashboard's page and script and the compaction worker, is found there as when it runs unbundled.
 */
const compiledTwinLocation: Plugin = {
  name: 'compiled-twin-location',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
      const source = await readFile(path, 'utf8');
      if (path.includes('/node_modules/') || !source.includes('import.meta.url')) return undefined;
      const twin = `./${relative(root, path).replace(/\.ts$/, '.js')}`;
      return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(twin)}, import.meta.url).href`), loader: 'ts' };
    });
  },
};

await build({
  entryPoints: [`${root}server/cli.ts`],
  outfile: `${root}dist/cli.mjs`,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Less to read and parse at every start; names are kept, so stack traces still name functions.
  minifyWhitespace: true,
  minifySyntax: true,
  // The CommonJS dependencies (socket.io, pino) call require, which an ES module does not have.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  plugins: [compiledTwinLocation],
  sourcemap: true,
  logLevel: 'warning',
});
