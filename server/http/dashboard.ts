import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import type { Route } from './router.ts';

const here = new URL('./dashboard/', import.meta.url);

/** Bundles the dashboard's TypeScript (and the socket.io client) for the browser, once. */
async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [new URL('app.ts', here).pathname],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** The live dashboard: the page at `/` and its script, built on first request and kept. */
export function dashboardRoutes(): Route[] {
  let script: Promise<string> | undefined;
  const page = readFileSync(new URL('page.html', here), 'utf8');
  return [
    { method: 'GET', pattern: /^\/$/, roles: [], handle: () => ({ body: page, contentType: 'text/html; charset=utf-8' }) },
    {
      method: 'GET',
      pattern: /^\/dashboard\.js$/,
      roles: [],
      handle: async () => {
        script ??= bundle().catch((error: Error) => {
          script = undefined;
          throw error;
        });
        return { body: await script, contentType: 'text/javascript; charset=utf-8', headers: { 'cache-control': 'no-cache' } };
      },
    },
  ];
}
