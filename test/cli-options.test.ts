import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { duration, hubAddress } from '../server/cli/common.ts';
import { hubUrl } from '../client-sdk/hub-url.ts';
import { optionsFrom } from '../server/cli/start.ts';
import { backup } from '../server/cli/backup.ts';
import { nearest, unknownOption } from '../server/cli/typos.ts';
import { prune } from '../server/cli/prune.ts';
import { reload } from '../server/cli/reload.ts';
import { status } from '../server/cli/status.ts';
import { report } from '../server/cli/report.ts';
import { tokens } from '../server/cli/tokens.ts';
import { HubOptions } from '../server/options.ts';
import { createHub } from '../server/index.ts';
import { control, GRANTS, startHub, tempDir, TOKENS } from './helpers/hub.ts';

describe('switchboard start options', () => {
  it('takes the config file, then the environment, then the flags, each winning over the one before; SWITCHBOARD_FSYNC=0 turns fsync off', () => {
    const config = join(tempDir(), 'hub.json');
    writeFileSync(config, JSON.stringify({ fsync: true, port: 4800, host: '127.0.0.2' }));
    expect(optionsFrom(['--config', config], {})).toMatchObject({ fsync: true, port: 4800, host: '127.0.0.2' });
    expect(optionsFrom(['--config', config], { SWITCHBOARD_FSYNC: '0', SWITCHBOARD_PORT: '4900' })).toMatchObject({ fsync: false, port: 4900, host: '127.0.0.2' });
    expect(optionsFrom(['--config', config, '--fsync', '--port', '5000'], { SWITCHBOARD_FSYNC: '0', SWITCHBOARD_PORT: '4900' })).toMatchObject({ fsync: true, port: 5000 });
    expect(optionsFrom([], { SWITCHBOARD_FSYNC: 'true' })).toEqual({ fsync: true });
    expect(optionsFrom([], {})).toEqual({});
  });
});

describe('bad options', () => {
  it('are refused in one line that names each bad option, as the CLI prints it, and nothing is written', async () => {
    const dataDir = join(tempDir(), 'hub');
    const refusal = await createHub({ port: 70_000, logLevel: 'loud' as 'info', dataDir }).then(() => 'started', (error: Error) => error.message);
    expect(refusal).toBe('invalid hub options: port: Too big: expected number to be <=65535; logLevel: Invalid option: expected one of "debug"|"info"|"warn"|"error"|"silent"');
    const tokens = await createHub({ port: 0, dataDir, tokens: [{ token: 'short', role: 'admin' }] }).then(() => 'started', (error: Error) => error.message);
    expect(tokens).toBe('invalid hub options: tokens[0].token: Too small: expected string to have >=8 characters');
    // A relative token file is read from the working directory (a config file's folder is not where it is looked for): named so.
    const relative = await createHub({ port: 0, dataDir, tokensFile: 'no-such-tokens.json' }).then(() => 'started', (error: Error) => error.message);
    expect(relative).toBe(`cannot read token file no-such-tokens.json (${join(process.cwd(), 'no-such-tokens.json')}): ENOENT: no such file or directory, open 'no-such-tokens.json'`);
    // A URL without its scheme is refused for that alone (it would read as the scheme hub-a: with a path).
    const advertised = await createHub({ port: 0, dataDir, advertiseUrl: 'hub-a:4701' }).then(() => 'started', (error: Error) => error.message);
    expect(advertised).toBe('invalid hub options: advertiseUrl: a URL with an http:// or https:// scheme, e.g. http://hub-a.internal:4701');
    expect(readdirSync(dirname(dataDir))).toEqual([]);
  });
});

describe('empty values', () => {
  it('refuses a flag given an empty value (--postgres "$UNSET") rather than falling back to a default, and reads an empty SWITCHBOARD_PORT as unset', async () => {
    expect(() => optionsFrom(['--postgres', ''], {})).toThrow('--postgres given an empty value; leave it out for the default');
    expect(() => optionsFrom(['--tokens=', '--host', ''], {})).toThrow('--tokens, --host given an empty value; leave them out for the default');
    expect(() => optionsFrom(['--port', ''], {})).toThrow('--port must be a whole number, got ""');
    expect(optionsFrom([], { SWITCHBOARD_PORT: '' })).toEqual({});
    // A bad port from the environment is named as the variable, not as a flag the user never typed.
    expect(() => optionsFrom([], { SWITCHBOARD_PORT: 'http' })).toThrow('SWITCHBOARD_PORT must be a whole number, got "http"');
    const refusal = (run: Promise<void>) => run.then(() => 'done', (error: Error) => error.message);
    const dir = tempDir();
    expect(await refusal(tokens(['create', '--role', 'monitor', '--data-dir', '']))).toBe('--data-dir given an empty value; leave it out for the default');
    expect(await refusal(tokens(['list', '--file', '', '--data-dir', dir]))).toBe('--file given an empty value; leave it out for the default');
    expect(await refusal(status(['--url', '', '--token', 'some-admin-token']))).toBe('--url given an empty value; leave it out for the default');
    expect(await refusal(reload(['--data-dir', '']))).toBe('--data-dir given an empty value; leave it out for the default');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('says a flag without a default needs a value, not that it has a default to fall back to (--to "$UNSET")', async () => {
    const refusal = (run: Promise<void>) => run.then(() => 'done', (error: Error) => error.message);
    const dir = tempDir();
    expect(await refusal(backup(['--to', '', '--data-dir', dir]))).toBe('--to given an empty value; it has no default: give it a value');
    expect(await refusal(prune(['--older-than=', '--url', '']))).toBe('--older-than, --url given an empty value; --older-than has no default: give it a value');
    expect(await refusal(tokens(['create', '--role', '', '--data-dir', dir]))).toBe('--role given an empty value; it has no default: give it a value');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a --watch interval a timer cannot hold (past 2^31 ms it fires at once, refreshing without pause)', async () => {
    const watch = (interval: string) => status(['--watch', '--interval', interval, '--url', 'http://127.0.0.1:9', '--token', 'some-admin-token']).then(() => 'done', (error: Error) => error.message);
    expect(await watch('3000000000')).toBe('--interval must be from 100 to 3600000 (ms), got 3000000000');
    expect(await watch('99')).toBe('--interval must be from 100 to 3600000 (ms), got 99');
  });

  it('refuses a prune age too long to count in ms in the terms of its flag, not of the hub payload', async () => {
    expect(() => duration('--older-than', '99999999999d')).toThrow('--older-than must be at most 104249991d (about 285,000 years), got "99999999999d"');
    expect(duration('--older-than', '104249991d')).toBe(104249991 * 86_400_000);
    const refused = await prune(['--older-than', '99999999999d', '--url', 'http://127.0.0.1:9', '--token', 'some-admin-token']).then(() => 'done', (error: Error) => error.message);
    expect(refused).toBe('--older-than must be at most 104249991d (about 285,000 years), got "99999999999d"');
  });

  it('refuses a --pid no process can have with the same message as 0', async () => {
    expect(await reload(['--pid', '9999999999']).then(() => 'sent', (error: Error) => error.message)).toBe('--pid must be a process id above 0, got 9999999999');
  });
});

describe('switchboard start tokens', () => {
  const list = [{ token: 'admin-token-from-config-0000', role: 'admin' }];

  it('lets a tokens source given later win over one given before, as every other option does, rather than refuse both', () => {
    const dir = tempDir();
    const config = join(dir, 'hub.json');
    const file = join(dir, 'tokens.json');
    writeFileSync(config, JSON.stringify({ tokens: list }));
    writeFileSync(file, JSON.stringify(list));
    const valid = (options: ReturnType<typeof optionsFrom>) => {
      const { tokens, tokensFile } = HubOptions.parse(options);
      return { tokens, tokensFile };
    };
    // The flag wins over the config file's list.
    expect(valid(optionsFrom(['--config', config, '--tokens', file], {}))).toEqual({ tokensFile: file, tokens: undefined });
    // The environment's file wins over the config file's list, the flag over the environment's list.
    expect(valid(optionsFrom(['--config', config], { SWITCHBOARD_TOKENS_FILE: file }))).toEqual({ tokensFile: file, tokens: undefined });
    expect(valid(optionsFrom(['--tokens', file], { SWITCHBOARD_TOKENS: JSON.stringify(list) }))).toEqual({ tokensFile: file, tokens: undefined });
    // The environment's list wins over the config file's tokensFile.
    writeFileSync(config, JSON.stringify({ tokensFile: file }));
    expect(valid(optionsFrom(['--config', config], { SWITCHBOARD_TOKENS: JSON.stringify(list) }))).toMatchObject({ tokens: [{ token: list[0]!.token }], tokensFile: undefined });
    // Both in one place is still refused, by the variables' names: nothing says which is meant; unless the flag chooses.
    const both = { SWITCHBOARD_TOKENS: JSON.stringify(list), SWITCHBOARD_TOKENS_FILE: file };
    expect(() => valid(optionsFrom([], both))).toThrow('SWITCHBOARD_TOKENS and SWITCHBOARD_TOKENS_FILE are both set: unset one (or give --tokens FILE, which wins over both)');
    expect(valid(optionsFrom(['--tokens', file], both))).toEqual({ tokensFile: file, tokens: undefined });
  });
});

describe('client commands: where the hub and its tokens are', () => {
  /** A data directory whose tokens.json holds an admin token named after `tag`. */
  const dataDirWith = (tag: string) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify([{ token: `${tag}-admin-token`, role: 'admin' }]), { mode: 0o600 });
    return dir;
  };

  it('takes the token of status, report and prune from DIR/tokens.json when --data-dir names DIR that has one, else where start takes its tokens with the same environment', async () => {
    const here = dataDirWith('here');
    const elsewhere = dataDirWith('elsewhere');
    vi.stubEnv('SWITCHBOARD_TOKEN', '');
    vi.stubEnv('SWITCHBOARD_TOKENS_FILE', join(elsewhere, 'tokens.json'));
    onTestFinished(() => void vi.unstubAllEnvs());
    expect((await hubAddress({ 'data-dir': here })).token).toBe('here-admin-token');
    // Without the flag, the environment names the hub's list, as `switchboard start` reads it.
    expect((await hubAddress({})).token).toBe('elsewhere-admin-token');
    // A directory without a tokens.json of its own is one whose hub took the environment's, as `start --data-dir DIR` does.
    expect((await hubAddress({ 'data-dir': tempDir() })).token).toBe('elsewhere-admin-token');
    vi.stubEnv('SWITCHBOARD_TOKENS_FILE', '');
    vi.stubEnv('SWITCHBOARD_TOKENS', JSON.stringify(GRANTS));
    expect((await hubAddress({ 'data-dir': here })).token).toBe('here-admin-token');
    expect((await hubAddress({ 'data-dir': tempDir() })).token).toBe(GRANTS.find((grant) => grant.role === 'admin')!.token);
  });

  it('dials the URL the hub holding the data directory noted (the port it took) over SWITCHBOARD_PORT, which is for start and may be 0', async () => {
    const dir = dataDirWith('here');
    // This process stands for the hub holding the directory; `switchboard start` notes hub.url there.
    writeFileSync(join(dir, 'hub.lock'), String(process.pid));
    writeFileSync(join(dir, 'hub.url'), 'http://127.0.0.1:45678\n');
    vi.stubEnv('SWITCHBOARD_URL', '');
    vi.stubEnv('SWITCHBOARD_DATA_DIR', dir);
    onTestFinished(() => void vi.unstubAllEnvs());
    for (const port of ['0', '4800', '']) {
      vi.stubEnv('SWITCHBOARD_PORT', port);
      expect((await hubAddress({ token: 'some-admin-token' })).url, port).toBe('http://127.0.0.1:45678');
    }
    // No hub holds the directory: a port it was told is the best guess, but never port 0.
    vi.stubEnv('SWITCHBOARD_DATA_DIR', tempDir());
    vi.stubEnv('SWITCHBOARD_PORT', '4800');
    expect((await hubAddress({ token: 'some-admin-token' })).url).toBe('http://127.0.0.1:4800');
    vi.stubEnv('SWITCHBOARD_PORT', '0');
    expect((await hubAddress({ token: 'some-admin-token' })).url).toBe('http://127.0.0.1:4700');
    // Read only when it is what is left: a bad value does not stop a command given its URL, and is named when it is used.
    vi.stubEnv('SWITCHBOARD_PORT', 'http');
    expect((await hubAddress({ url: 'http://127.0.0.1:4701', token: 'some-admin-token' })).url).toBe('http://127.0.0.1:4701');
    vi.stubEnv('SWITCHBOARD_PORT', '99999');
    await expect(hubAddress({ token: 'some-admin-token' })).rejects.toThrow('SWITCHBOARD_PORT must be a port number (1-65535), got 99999');
    // A socket.io client's ws:// names the same server, which the CLI reads over HTTP.
    expect((await hubAddress({ url: 'ws://127.0.0.1:4701', token: 'some-admin-token' })).url).toBe('http://127.0.0.1:4701');
  });

  it('says, as the SDK does, where tokens come from when status or report is refused the token, to use http:// for a hub that speaks it, and to start the hub when none listens', async () => {
    const hub = await startHub();
    const wrong = (command: typeof status) => command(['--url', hub.url, '--token', 'not-a-token-of-it']).then(() => 'done', (error: Error) => error.message);
    for (const command of [status, (args: string[]) => report(['some-workflow', ...args])]) {
      expect(await wrong(command)).toBe(`the hub at ${hub.url} refused the token: unknown token. Tokens come from the hub: it prints them when it starts, \`npx switchboard tokens list\` lists them, and they are stored in <dataDir>/tokens.json (./.switchboard/tokens.json by default).`);
    }
    // https:// to a hub that speaks http: the TLS error and what to do, in the SDK's words (prune's).
    const overTls = hub.url.replace('http:', 'https:');
    const tls = /^cannot reach the hub at https:\/\/127\.0\.0\.1:\d+ \(.*SSL.*\)\. The TLS handshake failed: a hub started with `npx switchboard start` speaks plain http, so use http:\/\/ unless a TLS proxy stands in front of it\.$/;
    for (const command of [status, (args: string[]) => report(['some-workflow', ...args]), (args: string[]) => prune(['--older-than', '1d', ...args])]) {
      expect(await command(['--url', overTls, '--token', TOKENS.admin]).then(() => 'done', (error: Error) => error.message)).toMatch(tls);
    }
    // A port Node's fetch refuses (the Fetch standard blocks it) is named so, not as a hub that is down.
    expect(await status(['--url', 'http://127.0.0.1:6000', '--token', TOKENS.admin]).then(() => 'done', (error: Error) => error.message)).toBe(
      "cannot reach the hub at http://127.0.0.1:6000: Node's fetch, which this command uses, refuses its port (the Fetch standard blocks it); run the hub on another port",
    );
    const url = hub.url;
    await hub.close();
    expect(await status(['--url', url, '--token', TOKENS.admin]).then(() => 'done', (error: Error) => error.message)).toMatch(/^cannot reach the hub at .*ECONNREFUSED.*\. Is the hub running\? Start it with `npx switchboard start`\.$/);
  });

  it('checks --url as the SDK does: a missing scheme gets its hint, a path is refused, and a server that is not a hub is named so', async () => {
    const refusal = (url: string) => status(['--url', url, '--token', 'some-admin-token']).then(() => 'done', (error: Error) => error.message);
    const sdkMessage = (url: string) => {
      try {
        return hubUrl(url);
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(await refusal('127.0.0.1:4700')).toBe(sdkMessage('127.0.0.1:4700'));
    expect(await refusal('127.0.0.1:4700')).toContain('http://127.0.0.1:4700');
    expect(await refusal('http://127.0.0.1:4700/switchboard')).toBe(sdkMessage('http://127.0.0.1:4700/switchboard'));
    // With a scheme, the rest is what is wrong: no hint to add one.
    expect(await refusal('http://127.0.0.1:70000')).toBe('"http://127.0.0.1:70000" is not a valid URL: check its host and port (1-65535)');
    // Some other web server on the port the user typed.
    const other: Server = createServer((_req, res) => res.writeHead(404).end('Not Found'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => void other.close());
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    expect(await refusal(url)).toBe(`${url} is not a Switchboard hub (/healthz answered HTTP 404 without the hub's error); check the URL`);
  });

  it('adds a token to DIR/tokens.json with tokens --data-dir DIR when it has one (else to the file SWITCHBOARD_TOKENS_FILE names, as its hub took), and refuses --file with --data-dir', async () => {
    const here = dataDirWith('here');
    const elsewhere = dataDirWith('elsewhere');
    vi.stubEnv('SWITCHBOARD_TOKENS_FILE', join(elsewhere, 'tokens.json'));
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    onTestFinished(() => {
      vi.unstubAllEnvs();
      vi.restoreAllMocks();
    });
    const roles = (dir: string) => (JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8')) as Array<{ role: string }>).map((grant) => grant.role);
    await tokens(['create', '--role', 'monitor', '--data-dir', here]);
    expect(roles(here)).toEqual(['admin', 'monitor']);
    expect(roles(elsewhere)).toEqual(['admin']);
    // A directory without its own list is one whose hub took the environment's (start --data-dir DIR with SWITCHBOARD_TOKENS_FILE).
    await tokens(['create', '--role', 'agent', '--data-dir', tempDir()]);
    expect(roles(elsewhere)).toEqual(['admin', 'agent']);
    const both = await tokens(['list', '--data-dir', here, '--file', join(elsewhere, 'tokens.json')]).then(() => 'done', (error: Error) => error.message);
    expect(both).toBe('give --data-dir or --file, not both');
  });
});

describe('switchboard status', () => {
  it('says "1 workflow" for one, and shows when each changed in local time, as --watch does', async () => {
    // A zone away from UTC, so that a UTC time would not pass for a local one.
    vi.stubEnv('TZ', 'Asia/Kolkata');
    let printed = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((printed += String(chunk)), true));
    onTestFinished(() => {
      vi.unstubAllEnvs();
      vi.restoreAllMocks();
    });
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'only-one', userQuery: 'one of one' });
    await status(['--url', hub.url, '--token', TOKENS.admin]);
    expect(printed).toMatch(/: up \d+ s, 1 workflow, 0 agents\n/);
    const { updatedAt } = await wf.get();
    const local = new Date(updatedAt).toTimeString().slice(0, 8);
    expect(local).not.toBe(new Date(updatedAt).toISOString().slice(11, 19));
    expect(printed).toMatch(new RegExp(`^only-one\\s+pending\\s+0%\\s+${local}\\s+one of one$`, 'm'));
  });
});

describe('an unknown option', () => {
  it('is named with its command, the nearest option that command has (a typo, other separators) and where its options are listed', async () => {
    const refusal = (command: typeof status, args: string[], name: string, help: string) =>
      command(args).then(
        () => 'done',
        (error: unknown) => (unknownOption(name, help, error) ?? (error as Error)).message,
      );
    const { START_HELP } = await import('../server/cli/start.ts');
    const { PRUNE_HELP } = await import('../server/cli/prune.ts');
    const { STATUS_HELP } = await import('../server/cli/status.ts');
    const start = (args: string[]) => Promise.resolve().then(() => void optionsFrom(args, {}));
    expect(await refusal(start, ['--datadir', 'x'], 'start', START_HELP)).toBe('unknown option --datadir for switchboard start (did you mean --data-dir?); switchboard start --help lists its options');
    expect(await refusal(prune, ['--older_than', '1d'], 'prune', PRUNE_HELP)).toBe('unknown option --older_than for switchboard prune (did you mean --older-than?); switchboard prune --help lists its options');
    expect(await refusal(status, ['--jsno'], 'status', STATUS_HELP)).toBe('unknown option --jsno for switchboard status (did you mean --json?); switchboard status --help lists its options');
    // Nothing near: no guess.
    expect(await refusal(status, ['-x'], 'status', STATUS_HELP)).toBe('unknown option -x for switchboard status; switchboard status --help lists its options');
    expect(await refusal(status, ['--verbose'], 'status', STATUS_HELP)).toBe('unknown option --verbose for switchboard status; switchboard status --help lists its options');
    // Two neighbours swapped are one slip: 'stauts' is status, not start (two changes away too).
    expect(nearest('stauts', ['start', 'status'])).toBe('status');
    expect(nearest('launch', ['start', 'status'])).toBeUndefined();
    // Other refusals are left as they are.
    expect(unknownOption('status', STATUS_HELP, new Error('anything else'))).toBeUndefined();
  });
});

describe('switchboard report --out', () => {
  it('says it could not write the report, and where, when the folder is missing or a directory is named', async () => {
    const hub = await startHub();
    await (await control(hub)).createWorkflow({ id: 'reported', userQuery: 'a report to write' });
    const refusal = (out: string) => report(['reported', '--out', out, '--url', hub.url, '--token', TOKENS.admin]).then(() => 'done', (error: Error) => error.message);
    const missing = join(tempDir(), 'no-such-folder', 'report.md');
    expect(await refusal(missing)).toBe(`cannot write the report to ${missing}: ENOENT: no such file or directory, open '${missing}'`);
    const folder = tempDir();
    expect(await refusal(folder)).toBe(`cannot write the report to ${folder}: EISDIR: illegal operation on a directory, open '${folder}'`);
  });
});

describe('a client command without a token', () => {
  it('says where it looked: the data directory it was given, or the token file without an admin or monitor token', async () => {
    for (const name of ['SWITCHBOARD_TOKEN', 'SWITCHBOARD_TOKENS', 'SWITCHBOARD_TOKENS_FILE', 'SWITCHBOARD_POSTGRES', 'SWITCHBOARD_URL']) vi.stubEnv(name, '');
    onTestFinished(() => void vi.unstubAllEnvs());
    const refusal = (args: string[]) => status(['--url', 'http://127.0.0.1:1', ...args]).then(() => 'done', (error: Error) => error.message);
    const advice = "pass --token, set SWITCHBOARD_TOKEN, or give --data-dir the hub's data directory (or SWITCHBOARD_TOKENS_FILE its token file, SWITCHBOARD_POSTGRES a cluster's database)";
    const empty = tempDir();
    expect(await refusal(['--data-dir', empty])).toBe(`no token (no ${join(empty, 'tokens.json')}): ${advice}`);
    const agentsOnly = join(tempDir(), 'agents.json');
    writeFileSync(agentsOnly, JSON.stringify([{ token: TOKENS.agent, role: 'agent' }]));
    vi.stubEnv('SWITCHBOARD_TOKENS_FILE', agentsOnly);
    expect(await refusal([])).toBe(`no token (${agentsOnly} holds no admin or monitor token): ${advice}`);
  });
});
