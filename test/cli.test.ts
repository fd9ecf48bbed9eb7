import { chmodSync, copyFileSync, existsSync, mkdirSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectControl } from '../client-sdk/index.ts';
import { CLI, spawnCli, startHubProcess } from './helpers/process.ts';
import { control, GRANTS, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { createHub } from '../server/index.ts';
import { startBanner } from '../server/cli/start.ts';
import { tokens } from '../server/cli/tokens.ts';
import { reload } from '../server/cli/reload.ts';
import { untilTrue } from './helpers/wait.ts';

describe('switchboard CLI', () => {
  it('starts a hub that prints its URL and generated tokens, and flushes state on SIGTERM', async () => {
    const dataDir = tempDir();
    const first = await startHubProcess(['--port', '0', '--data-dir', dataDir], { SWITCHBOARD_LOG_LEVEL: 'info' });
    const tokens = JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as Array<{ role: string; token: string }>;
    const admin = tokens.find((t) => t.role === 'admin')!.token;
    // Not a terminal: the output may be a log, so the tokens are named, not shown.
    expect(first.output()).not.toContain(admin);
    expect(first.output()).toContain(`not shown since the output is not a terminal (read them from switchboard tokens list --data-dir ${dataDir})`);
    expect(tokens.map((t) => t.role).sort()).toEqual(['admin', 'agent', 'monitor']);
    // Not a terminal: the logs are JSON lines, ready for a log shipper.
    const logged = await first.waitForOutput(/^\{.*"msg":"hub listening"/m);
    const logLine = logged.split('\n').find((line) => line.startsWith('{') && line.includes('"msg":"hub listening"'));
    expect(JSON.parse(logLine!)).toMatchObject({ level: 30, msg: 'hub listening', service: 'switchboard' });

    const client = await connectControl({ url: first.url, token: admin });
    const wf = await client.createWorkflow({ userQuery: 'from the CLI' });
    await wf.start();
    await wf.updateProgress('loading', 80);
    client.close();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // Environment variables work as well as flags.
    const second = await startHubProcess([], { SWITCHBOARD_PORT: '0', SWITCHBOARD_DATA_DIR: dataDir });
    expect(second.output()).toMatch(/admin\s+…\s+\(default-admin\)/);
    expect(second.output()).not.toContain(admin);
    const again = await connectControl({ url: second.url, token: admin });
    expect(await again.workflow(wf.id).get()).toMatchObject({ status: 'in_progress', progress: 80 });
    again.close();
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('prints a dashboard link whose fragment reads back as the monitor token, whatever characters it holds, on a terminal only', async () => {
    const monitorToken = 'watch+this&that=1%20/#?';
    const hub = await startHub({ tokens: [{ token: TOKENS.admin, role: 'admin' }, { token: monitorToken, role: 'monitor' }] });
    const link = new URL(/dashboard:\s+(\S+)/.exec(startBanner(hub, true))![1]!);
    expect(new URLSearchParams(link.hash.slice(1)).get('token')).toBe(monitorToken);
    const forLog = startBanner(hub, false);
    expect(/dashboard:\s+(\S+)/.exec(forLog)![1]).toBe(`${hub.url}/`);
    expect(forLog).not.toContain(TOKENS.admin);
    expect(forLog).not.toContain(encodeURIComponent(monitorToken));
  });

  it('prints its pid, which `switchboard reload` signals, found through the data directory, to read the tokens again', async () => {
    const dataDir = tempDir();
    const hub = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    expect(Number(/pid:\s+(\d+)/.exec(hub.output())?.[1])).toBe(hub.child.pid);
    const cli = (...args: string[]) => spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8' });
    const fresh = cli('tokens', 'create', '--role', 'monitor', '--data-dir', dataDir).stdout.trim();
    const listWith = (token: string) => fetch(`${hub.url}/api/workflows`, { headers: { authorization: `Bearer ${token}` } });
    expect((await listWith(fresh)).status).toBe(401);

    const reloaded = cli('reload', '--data-dir', dataDir);
    expect(reloaded.stderr).toBe('');
    expect(reloaded.stdout).toContain(`sent SIGHUP to the hub (pid ${hub.child.pid})`);
    await hub.waitForOutput(/SIGHUP: 4 tokens in force/);
    expect((await listWith(fresh)).status).toBe(200);
    // By the pid the banner printed, too (under npm start, the one to signal rather than npm).
    expect(cli('reload', '--pid', String(hub.child.pid)).status).toBe(0);
    await hub.waitForOutput(/SIGHUP: 4 tokens in force[\s\S]*SIGHUP: 4 tokens in force/);

    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);
    const gone = cli('reload', '--data-dir', dataDir);
    expect(gone.status).not.toBe(0);
    expect(gone.stderr).toContain(`no hub holds ${dataDir}`);
    expect(cli('reload', '--pid', '0').stderr).toContain('--pid must be a process id above 0');
  }, 60_000);

  it('logs a SIGHUP whose token file cannot be read at error, in the JSON log, and keeps the tokens in force', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, 'given-tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS), { mode: 0o600 });
    const hub = await startHubProcess(['--port', '0', '--data-dir', join(dataDir, 'data'), '--tokens', file]);
    writeFileSync(file, '[{"token":');
    hub.child.kill('SIGHUP');
    const logged = await hub.waitForOutput(/^\{.*"msg":"tokens not reloaded/m);
    const line = JSON.parse(logged.split('\n').find((l) => l.includes('"msg":"tokens not reloaded'))!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 50, reason: expect.stringContaining(`token file ${file} is not valid JSON`) });
    expect((await fetch(`${hub.url}/api/workflows`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } })).status).toBe(200);
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);
  });

  it('refuses to SIGHUP the holder of a data directory that embeds createHub, which the signal would end', async () => {
    const dataDir = tempDir();
    await startHub({ dataDir });
    // This process holds the lock: were the signal sent, it must not end the test run.
    const listener = () => undefined;
    process.on('SIGHUP', listener);
    onTestFinished(() => void setImmediate(() => process.off('SIGHUP', listener)));
    const refused = await reload(['--data-dir', dataDir]).then(() => 'sent', (error: Error) => error.message);
    expect(refused).toContain(`the hub holding ${dataDir} (pid ${process.pid}) is not one 'switchboard start' runs, or is still starting`);
  });

  it('refuses to SIGHUP a --pid that is not a hub switchboard start runs (npm, a typo), which the signal would end', async () => {
    const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
    onTestFinished(() => void bystander.kill('SIGKILL'));
    await once(bystander, 'spawn');
    const refused = await reload(['--pid', String(bystander.pid)]).then(() => 'sent', (error: Error) => error.message);
    expect(refused).toContain(`process ${bystander.pid} is not a hub 'switchboard start' runs (it runs sleep 30), and a SIGHUP would likely end it`);
    // Had it been sent, the signal would have ended it by now: a wait for its end gets there first.
    const ended = await Promise.race([once(bystander, 'exit').then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 300))]);
    expect(ended).toBe(false);
  });

  it('refuses a port in use with one line that says to try --port, and writes nothing to the data directory it was given', async () => {
    const first = await startHubProcess(['--port', '0', '--data-dir', tempDir()]);
    const port = new URL(first.url).port;
    const empty = tempDir();
    const missing = join(empty, 'not-yet');
    for (const dataDir of [empty, missing]) {
      const second = spawnSync(process.execPath, [...CLI, 'start', '--port', port, '--data-dir', dataDir], { encoding: 'utf8' });
      expect(second.status).not.toBe(0);
      expect(second.stderr.trim().split('\n')).toEqual([
        `switchboard: port ${port} on 127.0.0.1 is already in use (another hub?); try --port with another port, or --port 0 for any free one`,
      ]);
      expect(second.stdout).toBe('');
    }
    // Not a tokens.json, not a lock, not the folder itself.
    expect(readdirSync(empty)).toEqual([]);
  }, 60_000);

  it('says in one line to run npm run build when dist/ has not been built, not with a module-loader stack', () => {
    // bin/switchboard.mjs as it is, in a package folder without dist/.
    const root = tempDir();
    mkdirSync(join(root, 'bin'));
    copyFileSync(join(import.meta.dirname, '..', 'bin', 'switchboard.mjs'), join(root, 'bin', 'switchboard.mjs'));
    const run = spawnSync(process.execPath, [join(root, 'bin', 'switchboard.mjs'), 'status'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(`switchboard: ${join(root, 'dist', 'cli.mjs')} is missing; run \`npm run build\` in ${root} first\n`);
  });

  it('fails with a clear message and a non-zero status on bad arguments', () => {
    const badPort = spawnSync(process.execPath, [...CLI, 'start', '--port', 'abc'], { encoding: 'utf8' });
    expect(badPort.status).not.toBe(0);
    expect(badPort.stderr).toContain('--port must be a whole number');
    const unknown = spawnSync(process.execPath, [...CLI, 'launch'], { encoding: 'utf8' });
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toBe('switchboard: unknown command "launch"; run switchboard --help\n');
    const misspelt = spawnSync(process.execPath, [...CLI, 'stauts'], { encoding: 'utf8' });
    expect(misspelt.stderr).toBe('switchboard: unknown command "stauts" (did you mean status?); run switchboard --help\n');
    // A mistyped option: named with the nearest one the command has, not parseArgs' advice about positionals.
    const typo = spawnSync(process.execPath, [...CLI, 'status', '--data-dri', 'x'], { encoding: 'utf8' });
    expect(typo.status).toBe(2);
    expect(typo.stderr).toBe('switchboard: unknown option --data-dri for switchboard status (did you mean --data-dir?); switchboard status --help lists its options\n');
  });

  it('refuses a data directory this user cannot write, saying so (not as a port it may not listen on)', () => {
    const dataDir = tempDir();
    // As root every directory is writable: the hub runs as nobody then, who cannot write the root's 0700 one.
    const asRoot = process.getuid?.() === 0;
    const node = [process.execPath, ...CLI, 'start', '--port', '0', '--data-dir', dataDir];
    if (asRoot) chmodSync(dirname(node[1]!), 0o755);
    else {
      chmodSync(dataDir, 0o500);
      onTestFinished(() => chmodSync(dataDir, 0o700));
    }
    const run = asRoot ? spawnSync('runuser', ['-u', 'nobody', '--', ...node], { encoding: 'utf8' }) : spawnSync(node[0]!, node.slice(1), { encoding: 'utf8' });
    expect(run.stderr).toBe(
      `switchboard: dataDir ${dataDir} cannot be written by this user (EACCES: permission denied, access '${dataDir}'); run the hub as the directory's owner, or give it a directory this user can write\n`,
    );
    expect(run.status).toBe(2);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('prints one command\'s options for switchboard help COMMAND, as for COMMAND --help', () => {
    const help = spawnSync(process.execPath, [...CLI, 'help', 'retry'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(spawnSync(process.execPath, [...CLI, 'retry', '--help'], { encoding: 'utf8' }).stdout);
    expect(help.stdout).toMatch(/^switchboard retry — /);
  });

  it('prints the package version with --version', () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const run = spawnSync(process.execPath, [...CLI, flag], { encoding: 'utf8' });
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(`${version}\n`);
    }
  });
});

describe('switchboard status, report and tokens', () => {
  it('shows a running hub’s workflows and agents, fetches reports, and creates and revokes tokens, applied by a SIGHUP reload', async () => {
    const dataDir = tempDir();
    const hub = await startHubProcess(['--port', '0', '--data-dir', dataDir]);
    const run = (...args: string[]) => spawnSync(process.execPath, [...CLI, ...args, '--data-dir', dataDir, ...(args[0] === 'tokens' ? [] : ['--url', hub.url])], { encoding: 'utf8' });
    const admin = (JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as Array<{ role: string; token: string }>).find((t) => t.role === 'admin')!.token;
    const client = await connectControl({ url: hub.url, token: admin });
    const wf = await client.createWorkflow({ id: 'cli-wf', userQuery: 'Analyze from the CLI' });
    await wf.start();
    await wf.updateProgress('loading', 40);
    await wf.addObjective({ name: 'Answer the question' });

    const shown = run('status');
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/cli-wf\s+in_progress\s+40%/);
    // Beside the hub, the data directory says where it listens (on a port it took as 0) and gives a token (empty variables count as unset).
    const beside = spawnSync(process.execPath, [...CLI, 'status', '--json', '--data-dir', dataDir], { encoding: 'utf8', env: { ...process.env, SWITCHBOARD_URL: '', SWITCHBOARD_PORT: '', SWITCHBOARD_TOKEN: '' } });
    expect(JSON.parse(beside.stdout).workflows[0]).toMatchObject({ id: 'cli-wf' });
    expect(JSON.parse(run('status', '--json').stdout).workflows[0]).toMatchObject({ id: 'cli-wf', status: 'in_progress' });

    const out = join(dataDir, 'report.html');
    const saved = run('report', 'cli-wf', '--format', 'html', '--out', out);
    expect(saved.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toContain('<meta name="switchboard-version"');
    expect(run('report', 'cli-wf').stdout).toContain('Answer the question');
    const missing = run('report', 'no-such-workflow');
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('NOT_FOUND');
    expect(run('report', 'cli-wf', '--format', 'pdf').stderr).toContain('--format must be one of md, html, json');

    expect(run('tokens').stdout).toMatch(/admin\s+sb_admin_/);
    const created = run('tokens', 'create', '--role', 'monitor', '--name', 'ci-monitor', '--workflows', 'cli-wf');
    expect(created.status).toBe(0);
    const fresh = created.stdout.trim();
    expect((await fetch(`${hub.url}/api/workflows/cli-wf/summary`, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(401);
    const reloaded = new Promise<void>((resolve) => hub.child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('SIGHUP') && resolve()));
    hub.child.kill('SIGHUP');
    await reloaded;
    expect((await fetch(`${hub.url}/api/workflows/cli-wf/summary`, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(200);
    expect(run('tokens', 'create', '--role', 'janitor').stderr).toContain('--role must be admin, agent or monitor');
    expect(run('tokens', 'revoke', 'sb_monitor_no-such-token').stderr).toContain('no such token in');
    expect(run('tokens', 'revoke', admin).stderr).toContain('is the last admin token');
    expect(run('tokens', 'revoke', fresh).status).toBe(0);
    const revoked = new Promise<void>((resolve) => hub.child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('SIGHUP: 3 tokens') && resolve()));
    hub.child.kill('SIGHUP');
    await revoked;
    expect((await fetch(`${hub.url}/api/workflows/cli-wf/summary`, { headers: { authorization: `Bearer ${fresh}` } })).status).toBe(401);

    client.close();
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);
  }, 120_000);
});

describe('switchboard prune', () => {
  it('deletes archived workflows older than the age it is given and says which; a bad age changes nothing', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 10 });
    const client = await control(hub);
    const done = await client.createWorkflow({ id: 'old-run', userQuery: 'finished long ago' });
    await done.cancel('over');
    const live = await client.createWorkflow({ id: 'live-run', userQuery: 'still pending' });
    await untilTrue(() => !hub.state.workflows.has(done.id), 'the ended workflow archived');
    // Not spawnSync: the hub answering it runs in this process.
    const run = (...args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [...CLI, 'prune', ...args, '--url', hub.url, '--token', TOKENS.admin], (error, stdout, stderr) =>
          resolve({ status: error ? (error.code as number) : 0, stdout, stderr }),
        );
      });

    const refused = await new Promise<string>((resolve) => execFile(process.execPath, [...CLI, 'prune', '--older-than', '1d', '--url', hub.url, '--token', 'not-a-token'], (_, __, stderr) => resolve(stderr)));
    // The hub was reached: it refused the token, and says so once.
    expect(refused).toMatch(new RegExp(`^switchboard: the hub at ${hub.url} refused the token: unknown token\\.`));
    // A token of another role: the role the command needs, in the CLI's words rather than the SDK's function names.
    const wrongRole = await new Promise<string>((resolve) => execFile(process.execPath, [...CLI, 'prune', '--older-than', '1d', '--url', hub.url, '--token', TOKENS.monitor], (_, __, stderr) => resolve(stderr)));
    expect(wrongRole).toContain('(this command takes an admin token)');
    expect(wrongRole).not.toContain('connectControl');
    const bad = await run('--older-than', 'forever');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--older-than must be a duration such as 30d');
    expect((await run('--older-than', '30d')).stdout).toContain('deleted 0 archived workflow(s) that ended more than 30d ago');
    expect((await done.summary()).status).toBe('cancelled');

    const pruned = await run('--older-than', '0s');
    expect(pruned.status).toBe(0);
    expect(pruned.stdout).toMatch(/deleted 1 archived workflow\(s\)[\s\S]*old-run\s+cancelled/);
    expect((await client.listWorkflows()).items.map((w) => w.id)).toEqual([live.id]);
  }, 60_000);
});

describe('switchboard start: signals, output and settings', () => {
  it('holds a SIGHUP or SIGTERM that comes while the hub is starting: the reload happens, and the stop is clean', async () => {
    for (const signal of ['SIGHUP', 'SIGTERM'] as const) {
      const dataDir = tempDir();
      const hub = spawnCli(['start', '--port', '0', '--data-dir', dataDir], { SWITCHBOARD_LOG_LEVEL: 'warn' });
      // hub.lock names the pid `switchboard reload` signals; it exists from the store's open on.
      await untilTrue(() => existsSync(join(dataDir, 'hub.lock')), 'the hub took its lock');
      hub.child.kill(signal);
      if (signal === 'SIGHUP') {
        await hub.waitForOutput(/SIGHUP: 3 tokens in force/);
        hub.child.kill('SIGTERM');
      }
      expect(await hub.exited, signal).toBe(0);
      expect(hub.stdout()).toMatch(/listening on http:/);
      expect(existsSync(join(dataDir, 'hub.lock'))).toBe(false);
    }
  }, 60_000);

  it('never leaves SIGHUP, SIGINT or SIGTERM without a listener between starting and running, where the signal would end it', async () => {
    const dir = tempDir();
    const preload = join(dir, 'watch-signals.mjs');
    // Node gives a signal without listeners its default action: for all three, ending the process.
    writeFileSync(preload, `process.on('removeListener', (name) => { if (['SIGHUP', 'SIGINT', 'SIGTERM'].includes(name) && process.listenerCount(name) === 0) process.stderr.write('unguarded ' + name + '\\n'); });`);
    const hub = await startHubProcess(['--port', '0', '--data-dir', join(dir, 'data')], { NODE_OPTIONS: `--import=${preload}` });
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);
    expect(hub.output()).not.toContain('unguarded');
  });

  it('stops at once on a second SIGTERM while the start is stuck (a PostgreSQL that never answers)', async () => {
    // Accepts connections and says nothing: the cluster's start waits on it.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
      silent.close();
    });
    const { port } = silent.address() as AddressInfo;
    const connected = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
    const hub = spawnCli(['start', '--port', '0', '--data-dir', tempDir(), '--postgres', `postgres://u:p@127.0.0.1:${port}/db`], { SWITCHBOARD_LOG_LEVEL: 'warn' });
    await connected;
    hub.child.kill('SIGTERM');
    // Signals of one kind sent together may arrive as one: the second waits for the first to be heard.
    await hub.waitForOutput(/still starting; it stops cleanly once started/);
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(1);
    expect(hub.output()).toContain('SIGTERM: stopping at once, the hub was still starting');
  });

  it('stops cleanly on SIGTERM when whoever read its output (and its log) has gone', async () => {
    const dataDir = tempDir();
    const hub = await startHubProcess(['--port', '0', '--data-dir', dataDir], { SWITCHBOARD_LOG_LEVEL: 'info' });
    const admin = (JSON.parse(readFileSync(join(dataDir, 'tokens.json'), 'utf8')) as Array<{ role: string; token: string }>).find((t) => t.role === 'admin')!.token;
    const client = await connectControl({ url: hub.url, token: admin });
    await client.createWorkflow({ id: 'kept', userQuery: 'acknowledged before the stop' });
    client.close();
    // As `switchboard start | head -1` does once it has its line: the pipe's reader is gone.
    hub.child.stdout!.destroy();
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);
    expect(existsSync(join(dataDir, 'hub.lock'))).toBe(false);
    expect(readFileSync(join(dataDir, 'snapshot.json'), 'utf8')).toContain('"kept"');
  });

  it('refuses an empty or non-decimal port, an fsync setting it cannot read, an empty host, a backoff base above its maximum, and a start whose tokens cannot be read, making no data directory', async () => {
    for (const port of ['', '0x10', '1e3', '80.5']) {
      const refused = spawnSync(process.execPath, [...CLI, 'start', '--port', port], { encoding: 'utf8' });
      expect(refused.status, port).toBe(2);
      expect(refused.stderr).toContain(`--port must be a whole number, got "${port}"`);
    }
    const fsync = spawnSync(process.execPath, [...CLI, 'start', '--port', '0', '--data-dir', tempDir()], { encoding: 'utf8', env: { ...process.env, SWITCHBOARD_FSYNC: 'always' } });
    expect(fsync.status).toBe(2);
    expect(fsync.stderr).toContain('SWITCHBOARD_FSYNC must be 1 or 0 (true/false, yes/no, on/off), got "always"');
    await expect(createHub({ host: '', port: 0, tokens: GRANTS, logLevel: 'silent', dataDir: tempDir() })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('host') });
    await expect(createHub({ backoffBaseMs: 90_000, backoffMaxMs: 60_000, port: 0, tokens: GRANTS, logLevel: 'silent', dataDir: tempDir() })).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining('backoffBaseMs must be at most backoffMaxMs'),
    });
    const fresh = join(tempDir(), 'not-yet');
    await expect(createHub({ port: 0, logLevel: 'silent', dataDir: fresh, tokensFile: join(fresh, 'missing.json') })).rejects.toMatchObject({ code: 'VALIDATION' });
    expect(existsSync(fresh)).toBe(false);
  });

  it('refuses to revoke the token whose going would leave a list the hub refuses, or to create a monitor token whose scope names nothing, and leaves the file as it was', () => {
    const file = join(tempDir(), 'tokens.json');
    const only = [{ token: 'only-monitor-token', role: 'monitor' }];
    writeFileSync(file, JSON.stringify(only));
    const refused = spawnSync(process.execPath, [...CLI, 'tokens', 'revoke', 'only-monitor-token', '--file', file], { encoding: 'utf8' });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('the token list this change leaves is not a valid token list');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(only);
    // A scope that names no workflow is refused, not taken for no scope (every workflow).
    const unscoped = spawnSync(process.execPath, [...CLI, 'tokens', 'create', '--role', 'monitor', '--workflows', ' , ', '--file', file], { encoding: 'utf8' });
    expect(unscoped.status).toBe(2);
    expect(unscoped.stderr).toContain('--workflows names no workflow');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(only);
  });

  it('replaces a tokens file whole (through a symlink to it, keeping its mode), with no temporary file left', async () => {
    const dir = tempDir();
    const real = join(dir, 'real-tokens.json');
    writeFileSync(real, JSON.stringify(GRANTS));
    chmodSync(real, 0o640);
    const link = join(dir, 'tokens.json');
    symlinkSync(real, link);
    const before = statSync(real).ino;
    await tokens(['create', '--role', 'agent', '--name', 'added', '--file', link]);
    // A write in place that a crash or a full disk cut short would have left no tokens at all.
    expect(statSync(real).ino).not.toBe(before);
    expect(statSync(real).mode & 0o777).toBe(0o640);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect((JSON.parse(readFileSync(link, 'utf8')) as Array<{ name?: string }>).map((grant) => grant.name)).toEqual([...GRANTS.map((grant) => grant.name), 'added']);
    expect(readdirSync(dir).sort()).toEqual(['real-tokens.json', 'tokens.json']);
  });

  it('refuses a tokens command with arguments or options it would ignore (revoke A B, list --role), without showing them, and leaves the file as it was', async () => {
    const file = join(tempDir(), 'tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS));
    const before = readFileSync(file, 'utf8');
    const refusal = (args: string[]) => tokens([...args, '--file', file]).then(() => 'done', (error: Error) => error.message);
    const both = await refusal(['revoke', TOKENS.monitor, TOKENS.agent]);
    expect(both).toBe('switchboard tokens revoke takes one token, got 2; revoke them one at a time');
    expect(await refusal(['list', 'extra'])).toBe('switchboard tokens list takes no other arguments, got 1');
    expect(await refusal(['create', '--role', 'agent', 'extra'])).toBe('switchboard tokens create takes no other arguments, got 1');
    expect(await refusal(['list', '--role', 'agent'])).toBe('--role goes with switchboard tokens create, not list');
    expect(await refusal(['revoke', TOKENS.monitor, '--name', 'x', '--workflows', 'a'])).toBe('--name, --workflows go with switchboard tokens create, not revoke');
    expect(await refusal(['frob', 'x'])).toBe('unknown tokens action "frob"; use list, create or revoke');
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('takes the token for status from the hub’s own list in SWITCHBOARD_TOKENS_FILE or SWITCHBOARD_TOKENS, as `start` does', async () => {
    const hub = await startHub();
    await (await control(hub)).createWorkflow({ id: 'own-list', userQuery: 'status from the hub’s own tokens' });
    const file = join(tempDir(), 'hub-tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS));
    // Run where no .switchboard/tokens.json is: the list the variables name is the only place a token can come from.
    // Not spawnSync: the hub answering runs in this process.
    const status = (env: Record<string, string>) =>
      new Promise<{ stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [...CLI, 'status', '--json', '--url', hub.url], { cwd: tempDir(), env: { ...process.env, SWITCHBOARD_TOKEN: '', SWITCHBOARD_TOKENS: '', SWITCHBOARD_TOKENS_FILE: '', SWITCHBOARD_DATA_DIR: '', ...env } }, (_error, stdout, stderr) => resolve({ stdout, stderr })),
      );
    expect((await status({})).stderr).toContain('no token');
    expect(JSON.parse((await status({ SWITCHBOARD_TOKENS_FILE: file })).stdout).workflows[0]).toMatchObject({ id: 'own-list' });
    expect(JSON.parse((await status({ SWITCHBOARD_TOKENS: JSON.stringify(GRANTS) })).stdout).workflows[0]).toMatchObject({ id: 'own-list' });
  });

  it('refuses to create the first token of a data directory, which would leave its hub with no admin token, and writes nothing', async () => {
    const dataDir = join(tempDir(), 'not-started');
    const refused = await tokens(['create', '--role', 'agent', '--data-dir', dataDir]).then(() => 'done', (error: Error) => error.message);
    expect(refused).toBe(`${join(dataDir, 'tokens.json')} holds no tokens yet: a hub makes its admin, agent and monitor tokens at its first start; start it once, then create more`);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses a --file that does not exist (a mistyped path) for every tokens action, rather than starting a list of one token, and writes nothing', async () => {
    const dir = tempDir();
    const typo = join(dir, 'tokns.json');
    const refusal = (args: string[]) => tokens([...args, '--file', typo]).then(() => 'done', (error: Error) => error.message);
    const missing = `no token file ${typo}: check the path (--file names an existing token list; a hub writes its first one into its data directory at its first start)`;
    expect(await refusal(['create', '--role', 'admin'])).toBe(missing);
    // Not "a hub generates them on its first start": a hub given a --tokens file that is not there refuses to start.
    expect(await refusal(['list'])).toBe(missing);
    expect(await refusal(['revoke', TOKENS.agent])).toBe(missing);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lets two tokens commands that change one file at once both count: the second waits for the first, and a lock left by an ended one is taken over', async () => {
    const file = join(tempDir(), 'tokens.json');
    writeFileSync(file, JSON.stringify(GRANTS));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    onTestFinished(() => void vi.restoreAllMocks());
    // Another command is changing the file (this process stands for it): it holds the lock.
    writeFileSync(`${file}.lock`, String(process.pid));
    const revoking = tokens(['revoke', TOKENS.monitor, '--file', file]);
    // What that command writes, then it lets go.
    const other = { token: 'other-command-token', role: 'agent' as const };
    writeFileSync(file, JSON.stringify([...GRANTS, other]));
    rmSync(`${file}.lock`);
    await revoking;
    const kept = () => (JSON.parse(readFileSync(file, 'utf8')) as Array<{ token: string }>).map((g) => g.token);
    expect(kept()).toEqual([TOKENS.admin, TOKENS.agent, other.token]);
    // A lock whose process has ended is no one's.
    writeFileSync(`${file}.lock`, String(spawnSync(process.execPath, ['-e', '']).pid));
    await tokens(['revoke', other.token, '--file', file]);
    expect(kept()).toEqual([TOKENS.admin, TOKENS.agent]);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('ends quietly when the reader of its output goes away (report | head), without an unhandled EPIPE', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'piped', userQuery: 'a report read by head' });
    await wf.addObjective({ name: 'Be read in part' });
    const child = spawn(process.execPath, [...CLI, 'report', wf.id, '--format', 'html', '--url', hub.url, '--token', TOKENS.admin], { stdio: ['ignore', 'pipe', 'pipe'] });
    onTestFinished(() => void (child.exitCode === null && child.kill('SIGKILL')));
    // The reader leaves before the report comes: every write of it meets a closed pipe.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  }, 60_000);

  it('prints a Markdown report with the control characters clients wrote made harmless, as status does', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // Retitles the terminal, writes its clipboard, clears the screen, and reverses what follows.
    const hostile = 'query \x1b]0;owned\x07 \x1b]52;c;ZWNobyBoaQ==\x07 \x1b[2J \u009b31m \u202eevil';
    const wf = await client.createWorkflow({ id: 'escapes', userQuery: hostile });
    await wf.addObjective({ name: `objective \x1b[31mred` });
    const child = spawn(process.execPath, [...CLI, 'report', wf.id, '--url', hub.url, '--token', TOKENS.admin], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    expect(stdout).toContain('query ');
    expect(stdout).toContain('objective ');
    expect(stdout.match(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g)).toBeNull();
  }, 60_000);
});
