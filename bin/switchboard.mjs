#!/usr/bin/env -S node --no-allocation-site-pretenuring
// The flags of the line above are server/node-flags.ts's HUB_NODE_FLAGS (a test keeps them equal).
// The CLI is TypeScript; tsx compiles it on load, so no build step stands between a clone and a run.
import { register } from 'tsx/esm/api';

register();
await import('../server/cli.ts');
