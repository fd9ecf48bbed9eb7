// Part of `npm run build`, after tsc: the CLI and its dependencies as one ES module, dist/cli.mjs,
// which bin/switchboard.mjs runs. One file instead of the ~80 compiled modules and the ~200 files
// of dependencies they import is most of what start-up (issue 19: ≤ 300 ms to listening) needed.
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

/**
 * `accepts` (with mime-types, which indexes all of mime-db when loaded: ~14 ms) is required at the
 * top of socket.io and engine.io but only called to pick an encoding when serving the socket.io
 * client (off here) or compressing a long-polling response. Its only export is a function, so a
 * stand-in that loads it at the first call behaves the same.
 */
const acceptsAtFirstCall: Plugin = {
  name: 'accepts-at-first-call',
  setup(build) {
    build.onResolve({ filter: /^accepts$/ }, ({ namespace, resolveDir }) =>
      namespace === 'accepts-at-first-call' ? undefined : { path: 'accepts', namespace: 'accepts-at-first-call', pluginData: resolveDir },
    );
    build.onLoad({ filter: /.*/, namespace: 'accepts-at-first-call' }, ({ pluginData }) => ({
      contents: "let accepts; module.exports = function lazyAccepts(req) { accepts ??= require('accepts'); return accepts(req); };",
      resolveDir: pluginData as string,
      loader: 'js',
    }));
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
  plugins: [compiledTwinLocation, acceptsAtFirstCall],
  sourcemap: true,
  logLevel: 'warning',
});
