/**
 * The package as people install it: `npm pack` of a copy of this checkout, installed into a fresh
 * project that has neither TypeScript nor tsx, then used from plain JavaScript, through its CLI and
 * from a strict TypeScript program.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import * as clientFromName from 'switchboard/client';
import * as serverFromName from 'switchboard/server';
import * as clientSources from '../client-sdk/index.ts';
import * as serverSources from '../server/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
let work = '';
let app = '';
let packedFiles: string[] = [];

/** This environment without what an outer `npm test`, the test run or a shell set for switchboard or npm. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const kept = Object.entries(process.env).filter(
    ([key]) => !key.startsWith('SWITCHBOARD_') && key !== 'NODE_OPTIONS' && key !== 'INIT_CWD' && (!key.startsWith('npm_') || key === 'npm_config_cache' || key === 'npm_config_registry'),
  );
  return Object.fromEntries(kept);
}

/** Runs a command to completion; rejects with its output when it fails. */
async function run(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(command, args, { cwd, env: cleanEnvironment(), maxBuffer: 64 * 2 ** 20 });
    return stdout;
  } catch (error) {
    const failed = error as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${failed.message}\n${failed.stdout ?? ''}${failed.stderr ?? ''}`);
  }
}

/** The bare module names (`zod`, `node:fs`, `lowdb/node`) that the files under `dir` import. */
function bareImports(dir: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!/\.(m?js|d\.ts)$/.test(file)) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    // Static imports and re-exports (`… from 'x'`, `import 'x'`), and import('x'); in the bundled
    // CLI (dist/cli.mjs) a statement may also follow another on its line.
    const from = text.matchAll(/(?:^|[;}])\s*(?:import|export)\b[^;'"]*?\bfrom\s*(['"])([^'"]+)\1/gm);
    const bare = text.matchAll(/(?:^|[;}])\s*import\s*(['"])([^'"]+)\1/gm);
    const dynamic = text.matchAll(/\bimport\(\s*(['"])([^'"]+)\1\s*\)/g);
    for (const [, , specifier] of [...from, ...bare, ...dynamic]) {
      if (!specifier!.startsWith('.')) found.set(specifier!, file);
    }
  }
  return found;
}

describe('the published package', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'switchboard-package-'));
    // Packing builds dist/ from clean: in a copy, so this checkout's dist/ is never touched.
    const source = join(work, 'source');
    const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0');
    for (const file of listed) {
      if (file && file !== 'node_modules' && existsSync(join(root, file))) cpSync(join(root, file), join(source, file));
    }
    symlinkSync(realpathSync(join(root, 'node_modules')), join(source, 'node_modules'), 'dir');
    const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', work], source)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packedFiles = packed!.files.map((file) => file.path);

    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'switchboard-consumer', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed!.filename)], app);
  }, 180_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds compiled JavaScript with declarations and source maps, the CLI and the protocol documents, and no TypeScript to compile or test', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'PROTOCOL.md',
        'protocol/switchboard.schema.json',
        'bin/switchboard.mjs',
        'dist/server/index.js',
        'dist/server/index.d.ts',
        'dist/server/index.js.map',
        'dist/cli.mjs',
        'dist/server/cli.js',
        'dist/server/store/compaction-worker.js',
        'dist/server/http/dashboard/page.html',
        'dist/server/http/dashboard/dashboard.js',
        'dist/client-sdk/index.js',
        'dist/client-sdk/index.d.ts',
      ]),
    );
    expect(packedFiles.filter((file) => /\.[cm]?tsx?$/.test(file) && !/\.d\.[cm]?ts$/.test(file))).toEqual([]);
    expect(packedFiles.filter((file) => /(^|\/)(test|examples)\//.test(file) || file.endsWith('.tsbuildinfo'))).toEqual([]);
  });

  it('imports nothing at run time or in its types but Node built-ins and its own dependencies (no tsx, no esbuild)', () => {
    const installed = join(app, 'node_modules/switchboard');
    const { dependencies } = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const packageOf = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
    const strays = [...bareImports(join(installed, 'dist'))].filter(([specifier]) => !builtinModules.includes(specifier.replace(/^node:/, '')) && !(packageOf(specifier) in dependencies));
    expect(strays).toEqual([]);
    for (const tool of ['typescript', 'tsx', 'esbuild']) expect(existsSync(join(app, 'node_modules', tool)), tool).toBe(false);
  });

  it('runs a hub, an agent and a control client from a plain .mjs file: an order is created, executed by the agent and completed', async () => {
    const dataDir = join(work, 'mjs-data');
    writeFileSync(
      join(app, 'order.mjs'),
      `import { createHub } from 'switchboard/server';
import { connectAgent, connectControl } from 'switchboard/client';

const tokens = [{ token: 'admin-secret', role: 'admin' }, { token: 'agent-secret', role: 'agent' }];
const hub = await createHub({ port: 0, dataDir: process.argv[2], tokens, logLevel: 'silent' });
const agent = await connectAgent({ url: hub.url, token: 'agent-secret', agentId: 'shouter', agentType: 'text' });
const reported = new Promise((resolve) => agent.on('report', resolve));
await agent.onTask('shout', (task) => ({ result: { text: String(task.input.text).toUpperCase() } }));
const control = await connectControl({ url: hub.url, token: 'admin-secret' });
const workflow = await control.createWorkflow({ userQuery: 'from the installed package' });
await workflow.start();
const created = await workflow.createWorkOrder({ taskType: 'shout', input: { text: 'hello' } });
const report = await reported;
const order = await workflow.getWorkOrder(created.id);
console.log(JSON.stringify({ workflowId: workflow.id, report, state: order.state, result: order.result, agentId: order.history.at(-1)?.agentId }));
agent.close();
control.close();
await hub.close();
`,
    );
    const outcome = JSON.parse(await run(process.execPath, ['order.mjs', dataDir], app)) as { workflowId: string };
    expect(outcome).toMatchObject({ report: { outcome: 'completed', accepted: true }, state: 'completed', result: { text: 'HELLO' }, agentId: 'shouter' });
    // Closing folded the journal into the snapshot in the compaction worker, itself compiled.
    expect(readFileSync(join(dataDir, 'snapshot.json'), 'utf8')).toContain(outcome.workflowId);
  });

  it('loads from CommonJS: require() of switchboard/client and switchboard/server gets their API where Node can require ES modules, else says to use import()', async () => {
    writeFileSync(
      join(app, 'require.cjs'),
      `const client = require('switchboard/client');
const server = require('switchboard/server');
console.log(JSON.stringify({ connectControl: typeof client.connectControl, HubError: client.HubError === server.HubError, createHub: typeof server.createHub }));
`,
    );
    const loaded = run(process.execPath, ['require.cjs'], app);
    // Node 20.19 and 22.12 load an ES module without top-level await through require().
    if ((process.features as { require_module?: boolean }).require_module) {
      expect(JSON.parse(await loaded)).toEqual({ connectControl: 'function', HubError: true, createHub: 'function' });
    } else {
      await expect(loaded).rejects.toThrow(/ERR_REQUIRE_ESM[\s\S]*import\(\)/);
    }
  });

  it("hands out the protocol's JSON Schema and its package.json by name, as other tools read them", async () => {
    // node -e runs CommonJS, whose require() reads JSON.
    const read = "console.log(JSON.stringify([require('switchboard/protocol/switchboard.schema.json').title, require('switchboard/package.json').version]))";
    expect(JSON.parse(await run(process.execPath, ['-e', read], app))).toEqual(['Switchboard wire protocol', '0.1.0']);
    // The installed CLI finds the same package.json from its bundle in dist/.
    expect(await run(join(app, 'node_modules/.bin/switchboard'), ['--version'], app)).toBe('0.1.0\n');
  });

  it('npx switchboard start serves /healthz and the dashboard, then shuts down cleanly on SIGTERM', async () => {
    const dataDir = join(work, 'cli-data');
    // Its own process group: npx runs the CLI in a shell, and a signal must reach all three.
    const child = spawn('npx', ['switchboard', 'start', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {
      cwd: app,
      env: cleanEnvironment(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const closed = once(child, 'close');
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    });
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        const listening = /listening on (http:\/\/\S+)/.exec(output);
        if (listening) resolve(listening[1]!);
      };
      child.stdout.on('data', read);
      child.stderr.on('data', read);
      void closed.then(() => reject(new Error(`npx switchboard start ended before listening:\n${output}`)));
    });
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, workflows: 0 });
    expect(JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8'))).toHaveLength(3);
    // The bundled CLI finds the dashboard's files where tsc's output does.
    for (const path of ['/', '/dashboard.js']) expect((await fetch(`${url}${path}`)).status, path).toBe(200);

    process.kill(-child.pid!, 'SIGTERM');
    // 'close' comes once every process holding the output pipes, the hub included, has ended.
    await closed;
    expect(output).toContain('SIGTERM: shutting down');
    expect(output).not.toMatch(/shutdown failed|Error/);
  });

  it('type-checks a strict TypeScript consumer against the packed declarations', async () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noEmit: true,
          // The declarations' own imports are checked too, as in a project that does not skip them.
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(root, 'node_modules/@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    // Each @ts-expect-error must meet an error: were a declaration missing (any), tsc would fail on it.
    writeFileSync(
      join(app, 'consumer.ts'),
      `import { createHub, HubError, tuneV8ForHub, type HubOptionsInput, type RunningHub } from 'switchboard/server';
import { connectAgent, connectControl, type ReplyOf, type RequestOf, type TaskReport } from 'switchboard/client';

const options: HubOptionsInput = { port: 0, dataDir: './data', tokens: [{ token: 'admin-secret', role: 'admin' }] };

export async function orderOne(): Promise<string> {
  const hub: RunningHub = await createHub(options);
  tuneV8ForHub();
  const control = await connectControl({ url: hub.url, token: 'admin-secret' });
  const workflow = await control.createWorkflow({ userQuery: 'typed' });
  // What a request takes and its reply holds have names, so that a program can build one apart.
  const spec: Omit<RequestOf<'control', 'workOrder.create'>, 'workflowId'> = { taskType: 'shout', input: { text: 'hi' } };
  const order = await workflow.createWorkOrder(spec);
  const page: ReplyOf<'control', 'workOrder.list'> = await workflow.listWorkOrders();
  const agent = await connectAgent({ url: hub.url, token: 'agent-secret', agentId: 'a1', agentType: 'text' });
  agent.on('report', (report: TaskReport) => console.log(report.outcome, report.accepted));
  await agent.onTask('shout', (task) => ({ result: { text: String(task.input) } }));
  const port: number = hub.port;
  const error = new HubError('NOT_FOUND', 'no such order');
  // @ts-expect-error a role the hub does not know
  await createHub({ tokens: [{ token: 'x', role: 'superuser' }] });
  // @ts-expect-error a workflow needs its userQuery
  await control.createWorkflow({});
  // @ts-expect-error the control namespace has no such event
  const unknownEvent: RequestOf<'control', 'workOrder.frobnicate'> = {};
  // @ts-expect-error a work order's state is a string
  const wrong: number = order.state;
  await hub.close();
  return \`\${order.id} \${order.state} \${page.items.length} \${port} \${error.code} \${wrong} \${String(unknownEvent)}\`;
}
`,
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    await expect(run(process.execPath, [tsc, '-p', app], app)).resolves.toBe('');
  });
});

describe('inside this repository', () => {
  it('switchboard/client and switchboard/server are the sources, in tests and under tsx, never an older dist/', async () => {
    expect(clientFromName.connectAgent).toBe(clientSources.connectAgent);
    expect(serverFromName.createHub).toBe(serverSources.createHub);
    const resolve = "console.log(import.meta.resolve('switchboard/client'), import.meta.resolve('switchboard/server'))";
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', resolve], { cwd: root });
    expect(stdout.trim().split(' ').map((url) => fileURLToPath(url))).toEqual([join(root, 'client-sdk/index.ts'), join(root, 'server/index.ts')]);
  });
});
