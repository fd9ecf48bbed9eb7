// Run by cli-bundle.ts in a child process, as esbuild's plugins need its asynchronous API:
// bundles server/cli.ts from the sources into the file named by the first argument.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));
const entry = fileURLToPath(new URL('../../server/cli.ts', import.meta.url));

/**
 * Each source keeps its own `import.meta.url` in the bundle, so what it finds beside itself (the
 * dashboard bundled from app.ts, the worker entries run through tsx) is what it finds under tsx.
 */
const sourceLocation = {
  name: 'source-location',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, ({ path }) => {
      const source = readFileSync(path, 'utf8');
      if (relative(root, path).startsWith('node_modules') || !source.includes('import.meta.url')) return undefined;
      return { contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(path).href)), loader: 'ts' };
    });
  },
};

await build({
  entryPoints: [entry],
  outfile: process.argv[2],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The CommonJS dependencies (socket.io, pino) call require, which an ES module does not have.
  banner: { js: `import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(${JSON.stringify(pathToFileURL(entry).href)});` },
  plugins: [sourceLocation],
  logLevel: 'warning',
});
