import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const entry = fileURLToPath(new URL('../client-sdk/index.ts', import.meta.url));
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** Keeps every import of a Node built-in out of the bundle, and lists it with its importer. */
function recordBuiltins(found: string[]): Plugin {
  return {
    name: 'record-node-builtins',
    setup(bundler) {
      bundler.onResolve({ filter: /.*/ }, ({ path, importer }) => {
        if (!path.startsWith('node:') && !builtins.has(path)) return undefined;
        found.push(`${path} (imported by ${importer})`);
        return { path, external: true };
      });
    },
  };
}

describe('client SDK in a browser', () => {
  it('bundles for the browser with esbuild, and nothing in it imports a Node built-in module', async () => {
    const found: string[] = [];
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [recordBuiltins(found)],
    });
    expect(found).toEqual([]);
    const inputs = Object.keys(result.metafile.inputs);
    // The SDK and the transport it needs are really in it.
    expect(inputs).toContain('client-sdk/connection.ts');
    expect(inputs.some((input) => input.includes('node_modules/socket.io-client/'))).toBe(true);
    expect(inputs.some((input) => input.includes('node_modules/ws/'))).toBe(false);
    expect(result.outputFiles[0]!.text).toContain('connectAgent');
  });
});
