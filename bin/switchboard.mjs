#!/usr/bin/env node
// The compiled CLI, bundled into one file (scripts/build-cli.ts): `npm run build` writes dist/ (npm install and npm pack run it).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.mjs', import.meta.url);
try {
  await import(cli.href);
} catch (error) {
  // A checkout that was never built (or whose dist/ was removed): one line saying what to do, not a module-loader stack.
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' || existsSync(cli)) throw error;
  process.stderr.write(`switchboard: ${fileURLToPath(cli)} is missing; run \`npm run build\` in ${resolve(fileURLToPath(new URL('..', import.meta.url)))} first\n`);
  process.exit(2);
}
