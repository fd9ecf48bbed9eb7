import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Route } from './router.ts';

const here = new URL('./dashboard/', import.meta.url);

/**
 * The dashboard's browser script. Compiled, it is the file `npm run build` bundled; from the
 * sources (tests, tsx) esbuild, a devDependency, bundles it. The bundler's URL is computed so the
 * compiler does not follow it into dist.
 */
async function loadScript(): Promise<string> {
  if (!import.meta.url.endsWith('.ts')) return readFile(new URL('dashboard.js', here), 'utf8');
  const bundler = new URL('bundle.ts', here).href;
  const { bundleDashboard } = (await import(bundler)) as { bundleDashboard(): Promise<string> };
  return bundleDashboard();
}

/** The live dashboard: the page at `/` and its script, read (or from sources, bundled) on first request and kept. */
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
        script ??= loadScript().catch((error: Error) => {
          script = undefined;
          throw error;
        });
        return { body: await script, contentType: 'text/javascript; charset=utf-8', headers: { 'cache-control': 'no-cache' } };
      },
    },
  ];
}
