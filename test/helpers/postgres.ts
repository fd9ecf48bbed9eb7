import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { DIRECTORY_PREFIX, disown, own, sweepOrphans } from './postgres-cleanup.ts';

/** Where Debian's `postgresql` package puts PostgreSQL 15; SWITCHBOARD_POSTGRES_BIN overrides it. */
export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

/**
 * Settings for a throwaway server: loopback only, room for many pools, and no fsync (only an OS crash
 * loses data then). Not synchronous_commit=off: an immediate stop would lose acknowledged commits.
 */
const SERVER_SETTINGS = ['fsync=off', 'full_page_writes=off', 'listen_addresses=127.0.0.1', 'max_connections=200'];
/** How long a start may take before the harness gives up, in seconds (pg_ctl -t) and then for the first connection. */
const START_TIMEOUT_S = 30;
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a stopped postmaster may take to exit after pg_ctl returned. */
const STOP_TIMEOUT_MS = 10_000;

const run = promisify(execFile);
/** initdb refuses root, so as root every PostgreSQL program runs as the `postgres` user. */
const asRoot = process.getuid?.() === 0;

/** A PostgreSQL server in its own temporary directory, for one test file. */
export interface PostgresServer {
  /** Connection URL of the `postgres` database as the `postgres` superuser (trust auth). */
  url: string;
  port: number;
  /** The temporary directory: `data/` (the cluster), `postgres.log` and the unix socket. */
  dir: string;
  /** Creates an empty database with a name unique on this server and resolves with its URL. */
  newDatabase(): Promise<string>;
  /** Stops the server at once (`-m immediate`, like a crash), keeping its data. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port and data, resolving once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server if it runs and removes its directory. */
  destroy(): Promise<void>;
}

/** The directory holding initdb and pg_ctl, or undefined when PostgreSQL is not installed. */
export function postgresBinaries(): string | undefined {
  const bin = binDirectory();
  return existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl')) ? bin : undefined;
}

/** Why PostgreSQL tests cannot run here, or undefined when they can; throws when CI requires them (SWITCHBOARD_REQUIRE_POSTGRES=1). */
export function postgresSkipReason(): string | undefined {
  const why = missing();
  // CI installs PostgreSQL, so there a missing server is a failure, not a skip.
  if (why && process.env.SWITCHBOARD_REQUIRE_POSTGRES === '1') throw new Error(why);
  return why;
}

function binDirectory(): string {
  return process.env.SWITCHBOARD_POSTGRES_BIN || POSTGRES_BIN;
}

function missing(): string | undefined {
  if (!postgresBinaries()) return `PostgreSQL 15 is not installed at ${binDirectory()}; install it with: apt-get update && apt-get install -y postgresql`;
  if (asRoot && !postgresUser()) return 'running as root needs a `postgres` user to run initdb as; the postgresql package creates it';
  return undefined;
}

/** The uid and gid of the `postgres` user, read from /etc/passwd (os.userInfo only knows the current user). */
function postgresUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  return uid && gid ? { uid: Number(uid), gid: Number(gid) } : undefined;
}

/** The command line that runs `program` with `args`, as the postgres user when we are root. */
function asPostgres(program: string, args: string[]): [file: string, args: string[]] {
  return asRoot ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
}

/** The full path of PostgreSQL's program `name`. */
function binary(name: string): string {
  return join(binDirectory(), name);
}

/** Runs `program` as the postgres user (when root) in `cwd`; the error carries its stderr. */
async function runAsPostgres(program: string, args: string[], cwd: string): Promise<void> {
  const [file, argv] = asPostgres(program, args);
  try {
    await run(file, argv, { cwd });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw Object.assign(new Error(`${program} ${args.join(' ')} failed: ${(stderr || stdout || String(error)).trim()}`), { code: (error as { code?: unknown }).code });
  }
}

/** A new directory under os.tmpdir() that the postgres user owns, recorded for cleanup. */
function makeDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), DIRECTORY_PREFIX));
  if (asRoot) {
    const { uid, gid } = postgresUser()!;
    chownSync(dir, uid, gid);
  }
  own(dir);
  return dir;
}

let template: Promise<string> | undefined;

/** A freshly initdb'd data dir, made once per test process: a copy takes 0.1–0.3 s where initdb takes 1 s or more. */
function templateDataDir(): Promise<string> {
  template ??= (async () => {
    sweepOrphans();
    const dir = makeDirectory();
    const dataDir = join(dir, 'data');
    await runAsPostgres(binary('initdb'), ['-D', dataDir, '--auth=trust', '-U', 'postgres', '--no-sync', '--no-instructions', '-E', 'UTF8', '--locale=C'], dir);
    return dataDir;
  })();
  // A failed initdb is retried by the next caller instead of failing every later test.
  template.catch(() => (template = undefined));
  return template;
}

/** A TCP port free on 127.0.0.1 right now (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once a client can connect to `url`, retrying refused connections until a deadline. */
async function untilAccepting(url: string): Promise<void> {
  const deadline = Date.now() + CONNECT_TIMEOUT_MS;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL at ${url} accepted no connection within ${CONNECT_TIMEOUT_MS} ms: ${String(error)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * Starts a PostgreSQL server on a free 127.0.0.1 port in a new temporary directory, with trust auth
 * for the `postgres` user. Stopped and removed when the process ends if `destroy` was never called.
 * @example const server = await startPostgres(); const url = await server.newDatabase();
 */
export async function startPostgres(): Promise<PostgresServer> {
  const templateDir = await templateDataDir();
  const dir = makeDirectory();
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  // Copied by the postgres user when we are root, so the copy keeps its owner and its 0700 mode.
  await runAsPostgres('cp', ['-a', templateDir, dataDir], dir).catch((error: unknown) => {
    removeDirectory(dir);
    throw error;
  });

  let port = 0;
  let running = false;
  const stop = async () => {
    if (!running) return;
    const pid = postmasterOf(dataDir);
    const [file, args] = asPostgres(binary('pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-s', 'stop']);
    try {
      await run(file, args, { cwd: dir });
    } catch (error) {
      // A server that died on its own leaves a stale pid file that pg_ctl cannot signal; `status` exits 3 when none runs.
      const status = await runAsPostgres(binary('pg_ctl'), ['-D', dataDir, 'status'], dir).then(() => 0, (e: { code?: unknown }) => e.code);
      if (status !== 3) throw error;
    }
    // pg_ctl returns once the pid file is gone, which the postmaster removes before it has exited: on a busy machine
    // it still ran then. A stop is over once it has (a start on the same port, or a test looking at the process, follows).
    for (const deadline = Date.now() + STOP_TIMEOUT_MS; pid !== undefined && isAlive(pid); await new Promise((resolve) => setTimeout(resolve, 5))) {
      if (Date.now() > deadline) throw new Error(`postmaster ${pid} still runs ${STOP_TIMEOUT_MS} ms after pg_ctl stopped it`);
    }
    running = false;
  };
  const launch = async () => {
    // Counted as running before pg_ctl returns: a start that times out can leave a postmaster behind.
    running = true;
    const options = ['-p', String(port), '-k', dir, ...SERVER_SETTINGS.flatMap((s) => ['-c', s])].join(' ');
    try {
      await runAsPostgres(binary('pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', String(START_TIMEOUT_S), '-s', '-o', options, 'start'], dir);
      await untilAccepting(`postgres://postgres@127.0.0.1:${port}/postgres`);
    } catch (error) {
      await stop().catch(() => undefined);
      // The log says why (a port taken, a bad setting); pg_ctl only says it failed.
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
      throw new Error(`${(error as Error).message}\n${log}`);
    }
  };

  // Another process may take the port between freePort and the bind; pick again then.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      if (attempt >= 3 || !/could not bind|already in use/i.test((error as Error).message)) {
        removeDirectory(dir);
        throw error;
      }
    }
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  let databases = 0;
  return {
    url,
    port,
    dir,
    async newDatabase() {
      const name = `test_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        // FILE_COPY of template0 takes ~20 ms against ~90 ms for PG15's default WAL_LOG copy of template1 (fsync is off, so its checkpoints are cheap).
        await client.query(`CREATE DATABASE ${name} TEMPLATE template0 STRATEGY FILE_COPY`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop,
    async start() {
      if (!running) await launch();
    },
    async destroy() {
      await stop();
      removeDirectory(dir);
    },
  };
}

/** The pid of the postmaster running on `dataDir`, from its pid file; undefined when it has none. */
export function postmasterOf(dataDir: string): number | undefined {
  try {
    return Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process; a zombie (exited, not yet reaped by init) is not. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function removeDirectory(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  disown(dir);
}
