// Part of `npm run build`: the dashboard's page and its bundled script beside the compiled server.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { bundleDashboard } from '../server/http/dashboard/bundle.ts';

const source = new URL('../server/http/dashboard/', import.meta.url);
const target = new URL('../dist/server/http/dashboard/', import.meta.url);
mkdirSync(target, { recursive: true });
writeFileSync(new URL('dashboard.js', target), await bundleDashboard());
copyFileSync(new URL('page.html', source), new URL('page.html', target));
