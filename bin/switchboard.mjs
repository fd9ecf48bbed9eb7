#!/usr/bin/env node
// The compiled CLI: `npm run build` writes dist/ (npm install and npm pack run it).
await import('../dist/server/cli.js');
