import { build } from 'esbuild';

/** Bundles the dashboard's TypeScript (and the socket.io client) into one browser script. */
export async function bundleDashboard(): Promise<string> {
  const result = await build({
    entryPoints: [new URL('app.ts', import.meta.url).pathname],
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
