import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SEARCH_SCRIPT_SOURCE } from '../reports/page-assets.ts';
import type { Route } from './router.ts';

const here = new URL('./dashboard/', import.meta.url);

/**
 * The page's Content-Security-Policy, behind the escaping of client text in its HTML: scripts
 * only from the hub (no inline script or handler runs), connections only to the hub, no framing.
 * The report's search script is allowed by its hash: the report opens as a blob: of this page,
 * which keeps this policy besides its own.
 */
const PAGE_POLICY = [
  "default-src 'none'",
  `script-src 'self' ${SEARCH_SCRIPT_SOURCE}`,
  "style-src 'unsafe-inline'",
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

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
    { method: 'GET', pattern: /^\/$/, roles: [], handle: () => ({ body: page, contentType: 'text/html; charset=utf-8', headers: { 'content-security-policy': PAGE_POLICY } }) },
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
