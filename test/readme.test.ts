import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { startHubProcess } from './helpers/process.ts';
import { tempDir } from './helpers/hub.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The first ```ts block after the heading `## Quick start` in README.md. */
function quickStart(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('README has no quick start code block');
  return match[1]!;
}

describe('README', () => {
  it('shows the two commands and a quick start of at most 15 lines that runs against a hub', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toContain('npm install');
    expect(readme).toContain('npm start');
    expect(readme).toContain('npm test');
    const code = quickStart();
    expect(code.trim().split('\n').length).toBeLessThanOrEqual(15);

    const dataDir = tempDir();
    const hub = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    const file = join(root, `quickstart-test-${process.pid}.ts`);
    writeFileSync(file, code);
    try {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], {
        cwd: root,
        env: { ...process.env, SWITCHBOARD_URL: hub.url, SWITCHBOARD_TOKENS_FILE: join(dataDir, 'tokens.json') },
      });
      expect(stdout).toContain("status: 'in_progress'");
      expect(stdout).toContain('progress: 25');
    } finally {
      rmSync(file, { force: true });
    }
  });
});

/** The rows of the markdown table that follows `heading` (its first table), as cells. */
function tableAfter(readme: string, heading: string): string[][] {
  const start = readme.indexOf(heading);
  if (start === -1) throw new Error(`README has no "${heading}"`);
  const lines = readme.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim()));
  }
  return rows;
}

/** Each option with its default as the table must show it: JSON in a code span, or — for none. */
function expectDocumented(rows: string[][], defaults: Record<string, unknown>, keys: string[]): void {
  const byName = new Map(rows.map(([name, byDefault]) => [name!.replace(/`/g, ''), byDefault!]));
  const wrong: string[] = [];
  for (const key of keys) {
    const cell = byName.get(key);
    const value = key.split('.').reduce<unknown>((object, part) => (object as Record<string, unknown> | undefined)?.[part], defaults);
    if (cell === undefined) wrong.push(`${key} is missing`);
    else if (value === undefined ? cell !== '—' : cell !== `\`${JSON.stringify(value)}\``) wrong.push(`${key}: README says ${cell}, the schema ${JSON.stringify(value)}`);
  }
  expect(wrong, 'the README configuration tables must match the schemas').toEqual([]);
}

describe('README reference', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it('lists every createHub option of HubOptions with its default', async () => {
    const { HubOptions } = await import('../server/options.ts');
    const keys = Object.entries(HubOptions.shape).flatMap(([key, schema]) => {
      const inner = (schema as { unwrap?: () => { shape?: object } }).unwrap?.();
      return inner?.shape ? Object.keys(inner.shape).map((sub) => `${key}.${sub}`) : [key];
    });
    expect(keys).toContain('rateLimit.burst');
    expectDocumented(tableAfter(readme, '## Configuration'), HubOptions.parse({}), keys);
  });

  it('lists every per-workflow config option with its default', async () => {
    const { WorkflowConfig } = await import('../shared/schemas/workflow.ts');
    expectDocumented(tableAfter(readme, '| Workflow config |'), WorkflowConfig.parse({}), Object.keys(WorkflowConfig.shape));
  });

  it('maps the Python package to SDK methods that exist', async () => {
    const sdk = await import('../client-sdk/index.ts');
    const classes: Record<string, object> = {
      wf: sdk.WorkflowHandle.prototype,
      control: sdk.ControlClient.prototype,
      agent: sdk.AgentClient.prototype,
      monitor: sdk.MonitorClient.prototype,
    };
    const rows = tableAfter(readme, '## Coming from the Python package');
    for (const name of ['WorkflowManager', 'WorkflowState', 'DataInventoryManager', 'AgentCoordinator', 'WorkflowUpdater', 'DocumentationEngine']) {
      expect(rows.some(([python]) => python!.includes(name)), name).toBe(true);
    }
    const calls = rows.flatMap(([, ours]) => [...ours!.matchAll(/\b(wf|control|agent|monitor)\.(\w+)\(/g)].map((m) => [m[1]!, m[2]!] as const));
    expect(calls.length).toBeGreaterThan(30);
    expect(calls.filter(([object, method]) => typeof (classes[object] as Record<string, unknown>)[method] !== 'function').map((c) => c.join('.'))).toEqual([]);
    for (const entry of ['connectAgent', 'connectControl']) expect(typeof (sdk as Record<string, unknown>)[entry]).toBe('function');
  });

  it('lists every example and links the protocol and the benchmarks', () => {
    const programs = readdirSync(join(root, 'examples')).filter((name) => /\.(ts|mjs)$/.test(name));
    expect(programs.filter((name) => !readme.includes(`(examples/${name})`))).toEqual([]);
    for (const link of ['(PROTOCOL.md)', '(BENCHMARKS.md)', '(protocol/switchboard.schema.json)']) expect(readme).toContain(link);
  });
});
