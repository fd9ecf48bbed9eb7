import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const FOLDERS = ['server', 'client-sdk', 'shared'];

/** Every .ts file under `folder`, as absolute paths. */
function sources(folder: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/**
 * The files `file` imports by a relative path. TypeScript's own scanner finds them, so `import type`,
 * `export ... from` and multi-line imports all count: a type-only cycle is still a tangle.
 */
function relativeImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles.map((i) => i.fileName).filter((name) => name.startsWith('.')).map((name) => resolve(dirname(file), name));
}

/** The import cycles of the graph, one per back edge found by a depth-first walk (as madge counts them). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (file: string) => {
    path.push(file);
    onPath.add(file);
    for (const next of graph.get(file) ?? []) {
      if (onPath.has(next)) found.push([...path.slice(path.indexOf(next)), next]);
      else if (!done.has(next) && graph.has(next)) visit(next);
    }
    path.pop();
    onPath.delete(file);
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) if (!done.has(file)) visit(file);
  return found;
}

describe('module structure', () => {
  it('has no import cycle among the sources of server, client-sdk and shared, type imports included', () => {
    const graph = new Map<string, string[]>();
    for (const folder of FOLDERS) for (const file of sources(join(root, folder))) graph.set(file, relativeImports(file));
    const found = cycles(graph).map((cycle) => cycle.map((file) => relative(root, file)).join(' → '));
    if (found.length) console.log(`${found.length} import cycles:\n${found.join('\n')}`);
    expect(found).toEqual([]);
  });
});
