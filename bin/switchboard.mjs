#!/usr/bin/env node
// The compiled CLI, bundled into one file (scripts/build-cli.ts): `npm run build` writes dist/ (npm install and npm pack run it).
await import('../dist/cli.mjs');
