#!/usr/bin/env node
// The CLI is TypeScript; tsx compiles it on load, so no build step stands between a clone and a run.
import { register } from 'tsx/esm/api';

register();
await import('../server/cli.ts');
