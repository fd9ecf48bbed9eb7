import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHub, type RunningHub } from '../index.ts';
import type { HubOptionsInput } from '../options.ts';
import { parseSecretJson } from '../secret-json.ts';
import { tuneV8ForHub } from '../v8-tuning.ts';
import { CliError, HUB_URL_FILE, integer, onOff, refuseEmptyFlags } from './common.ts';

export const START_HELP = `switchboard start — run a hub until SIGINT or SIGTERM

Usage: switchboard start [--config FILE] [--tokens FILE] [--port N] [--host H] [--data-dir DIR] [--fsync] [--log-level L]
                         [--allowed-hosts LIST] [--truncate-damaged-journal] [--postgres URL --node-id ID [--advertise-url URL]]

Options (environment variable in brackets):
  --config FILE     JSON file with any createHub option (see README); the        [SWITCHBOARD_CONFIG]
                    environment wins over it, and flags over both
  --tokens FILE     JSON token list [{ token, role, name?, agentId?, workflows? }] [SWITCHBOARD_TOKENS_FILE]
                    (or the list itself as JSON in SWITCHBOARD_TOKENS); default: generated once
                    into the data directory's tokens.json, and shown at start on a terminal
                    only. SIGHUP to the pid the banner prints (switchboard reload) reloads them.
  --port N          TCP port, 0 for any free one      [SWITCHBOARD_PORT]      default 4700
  --host H          interface to listen on            [SWITCHBOARD_HOST]      default 127.0.0.1
  --data-dir DIR    journal, snapshot and tokens      [SWITCHBOARD_DATA_DIR]  default ./.switchboard
  --fsync           flush the journal to disk on every batch               [SWITCHBOARD_FSYNC=1|0]
  --log-level L     debug | info | warn | error | silent  [SWITCHBOARD_LOG_LEVEL] default info
  --allowed-hosts LIST
                    host names the hub answers to, comma-separated (.example.com: it and its
                    subdomains; * any), besides IP addresses, localhost, --host, this machine's
                    name and --advertise-url's host: a request naming another Host is refused
                    (DNS rebinding). Unset: checked when --host is a loopback address, any
                    name otherwise                                         [SWITCHBOARD_ALLOWED_HOSTS]
  --truncate-damaged-journal
                    start although an acknowledged journal record is damaged: rebuild the
                    state from the records before it and delete it and everything after it
                    (the hub says exactly what); without the manifest or the newest journal
                    segment, start from the snapshot and journal that are there. Use once,
                    after a refused start says so.
                    On a cluster node: the damaged row of the PostgreSQL journal and every row
                    after it, on one node, while no node holds the lease.

Cluster (see README, "Running a cluster"):
  --postgres URL    run as a node of the cluster on this PostgreSQL        [SWITCHBOARD_POSTGRES]
  --node-id ID      this node's name in the cluster (default host:port)    [SWITCHBOARD_NODE_ID]
  --advertise-url URL
                    the URL clients reach this node at (default: the one it listens on)
                                                                           [SWITCHBOARD_ADVERTISE_URL]
`;

/** The options in a JSON config file; createHub validates them. */
function readConfig(file: string): HubOptionsInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read config ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseSecretJson(text);
  } catch (error) {
    throw new CliError(`config ${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CliError(`config ${file} must hold a JSON object`);
  return parsed as HubOptionsInput;
}

/** The hub options from a config file, the environment and the flags (each wins over the one before); undefined for --help. */
export function optionsFrom(args: string[], env: NodeJS.ProcessEnv = process.env): HubOptionsInput | undefined {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      tokens: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      fsync: { type: 'boolean' },
      'truncate-damaged-journal': { type: 'boolean' },
      'log-level': { type: 'string' },
      'allowed-hosts': { type: 'string' },
      postgres: { type: 'string' },
      'node-id': { type: 'string' },
      'advertise-url': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  refuseEmptyFlags(values, ['port']);
  const configFile = values.config ?? env.SWITCHBOARD_CONFIG;
  const options: HubOptionsInput = configFile ? readConfig(configFile) : {};
  // Where the tokens come from is one choice: a source given here replaces the config file's (the
  // flag the environment's too), as any other option does; both given in the environment are refused.
  // Said in the variables' names: createHub would name its options, which the user did not set.
  if (env.SWITCHBOARD_TOKENS && env.SWITCHBOARD_TOKENS_FILE && !values.tokens) {
    throw new CliError('SWITCHBOARD_TOKENS and SWITCHBOARD_TOKENS_FILE are both set: unset one (or give --tokens FILE, which wins over both)');
  }
  if (env.SWITCHBOARD_TOKENS || env.SWITCHBOARD_TOKENS_FILE) {
    delete options.tokens;
    delete options.tokensFile;
  }
  if (env.SWITCHBOARD_TOKENS_FILE) options.tokensFile = env.SWITCHBOARD_TOKENS_FILE;
  if (env.SWITCHBOARD_TOKENS) {
    try {
      options.tokens = parseSecretJson(env.SWITCHBOARD_TOKENS) as NonNullable<HubOptionsInput['tokens']>;
    } catch (error) {
      throw new CliError(`SWITCHBOARD_TOKENS is not valid JSON: ${(error as Error).message}`);
    }
  }
  if (values.tokens) {
    delete options.tokens;
    options.tokensFile = values.tokens;
  }
  // Named as given (an empty variable is an unset one, as for the client commands).
  const port = values.port !== undefined ? integer('--port', values.port) : integer('SWITCHBOARD_PORT', env.SWITCHBOARD_PORT || undefined);
  if (port !== undefined) options.port = port;
  const host = values.host ?? env.SWITCHBOARD_HOST;
  if (host) options.host = host;
  const dataDir = values['data-dir'] ?? env.SWITCHBOARD_DATA_DIR;
  if (dataDir) options.dataDir = dataDir;
  // An unknown value is refused rather than read as off: it is the durability of acknowledged writes.
  const fsync = values.fsync ? true : onOff('SWITCHBOARD_FSYNC', env.SWITCHBOARD_FSYNC);
  if (fsync !== undefined) options.fsync = fsync;
  if (values['truncate-damaged-journal']) options.truncateDamagedJournal = true;
  const logLevel = values['log-level'] ?? env.SWITCHBOARD_LOG_LEVEL;
  if (logLevel) options.logLevel = logLevel as NonNullable<HubOptionsInput['logLevel']>;
  const allowedHosts = values['allowed-hosts'] ?? env.SWITCHBOARD_ALLOWED_HOSTS;
  // Left as written for createHub to check: a bad name is refused there, naming the option.
  if (allowedHosts) options.allowedHosts = allowedHosts.trim() === '*' ? '*' : allowedHosts.split(',').map((name) => name.trim());
  const postgres = values.postgres ?? env.SWITCHBOARD_POSTGRES;
  if (postgres) options.postgres = postgres;
  const nodeId = values['node-id'] ?? env.SWITCHBOARD_NODE_ID;
  if (nodeId) options.nodeId = nodeId;
  const advertiseUrl = values['advertise-url'] ?? env.SWITCHBOARD_ADVERTISE_URL;
  if (advertiseUrl) options.advertiseUrl = advertiseUrl;
  return options;
}

/** A one-line CliError for a port that cannot be had (taken, or privileged), saying what to try. */
function listenRefusal(error: unknown): CliError | undefined {
  const { code, syscall, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  // An EACCES of the data directory's files is no port's: Node's own message names the file.
  if (syscall !== 'listen') return undefined;
  const where = `port ${port} on ${address}`;
  if (code === 'EADDRINUSE') return new CliError(`${where} is already in use (another hub?); try --port with another port, or --port 0 for any free one`);
  if (code === 'EACCES') return new CliError(`no permission to listen on ${where}; try --port with a port above 1023`);
  return undefined;
}

/**
 * What `switchboard start` prints: the URL, the pid, the dashboard link and the tokens. Their values
 * (and the link's `#token=`) only with `showTokens`; otherwise their roles, names and where to read them.
 */
export function startBanner(hub: RunningHub, showTokens: boolean): string {
  const inPostgres = hub.options.postgres && !hub.options.tokens && !hub.options.tokensFile;
  const monitorToken = hub.tokens.find((t) => t.role === 'monitor' && !t.workflows) ?? hub.tokens.find((t) => t.role === 'admin');
  const listing = inPostgres ? 'switchboard tokens list --postgres URL' : hub.options.tokensFile ? `the file ${hub.options.tokensFile}` : hub.options.tokens ? 'SWITCHBOARD_TOKENS or the config file' : `switchboard tokens list --data-dir ${hub.options.dataDir}`;
  const lines = [
    `Switchboard hub listening on ${hub.url}`,
    `  pid:            ${process.pid}  ('switchboard reload' or 'kill -HUP ${process.pid}' reloads the tokens)`,
    `  dashboard:      ${hub.url}/${showTokens && monitorToken ? `#token=${encodeURIComponent(monitorToken.token)}` : ''}`,
    `  data directory: ${hub.options.dataDir}`,
    ...(hub.options.postgres ? [`  cluster node:   ${hub.cluster().nodeId} (${hub.cluster().role}), journal in PostgreSQL`] : []),
    `  tokens${hub.tokensCreated ? ` (generated, saved ${inPostgres ? 'in PostgreSQL' : 'in the data directory'})` : ''}${showTokens ? '' : `, not shown since the output is not a terminal (read them from ${listing})`}:`,
    ...hub.tokens.map((t) => `    ${t.role.padEnd(8)}${showTokens ? t.token : '…'}${t.name ? `  (${t.name})` : ''}`),
    '',
  ];
  return lines.join('\n') + '\n';
}

/** `switchboard start`: runs a hub until SIGINT or SIGTERM, then shuts it down cleanly (state flushed). */
export async function start(args: string[]): Promise<void> {
  const options = optionsFrom(args);
  if (!options) return void process.stdout.write(START_HELP);
  // Output is for whoever reads it: a reader gone (`start | head -1`) must not stop the hub, least of all mid-shutdown.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  // From before the hub takes its lock until it is up, signals wait (a reload reads hub.lock, which exists from then on).
  const early: string[] = [];
  const hold = (signal: string) => () => {
    // A second stop while still starting (stuck recovering, or on an unreachable PostgreSQL) stops at once.
    if (signal !== 'SIGHUP' && early.some((held) => held !== 'SIGHUP')) {
      process.stderr.write(`${signal}: stopping at once, the hub was still starting\n`);
      process.exit(1);
    }
    if (signal !== 'SIGHUP') process.stderr.write(`${signal}: the hub is still starting; it stops cleanly once started (send it again to stop at once)\n`);
    early.push(signal);
  };
  const held = { SIGINT: hold('SIGINT'), SIGTERM: hold('SIGTERM'), SIGHUP: hold('SIGHUP') };
  for (const [signal, listener] of Object.entries(held)) process.on(signal, listener);
  const letGo = () => {
    for (const [signal, listener] of Object.entries(held)) process.off(signal, listener);
  };
  let hub: Awaited<ReturnType<typeof createHub>>;
  try {
    hub = await createHub(options).catch((error: unknown) => Promise.reject(listenRefusal(error) ?? error));
  } catch (error) {
    letGo();
    throw error;
  }
  // The process is the hub's alone; after recovery, which builds long-lived state and may keep V8's default.
  tuneV8ForHub();
  // A terminal is a person; anything else (a pipe, a file, systemd) may be a log that keeps the tokens.
  process.stdout.write(startBanner(hub, process.stdout.isTTY === true));
  // For status, report and prune run beside it, whatever port it took; a cluster node holds no directory lock to vouch for it.
  const urlFile = hub.options.postgres ? undefined : join(hub.options.dataDir, HUB_URL_FILE);
  if (urlFile) writeFileSync(urlFile, hub.url + '\n');

  let stopping = false;
  const stop = (signal: string) => {
    // A second stop while the close is stuck (a hung disk or peer) ends the process: what was acknowledged is in the journal.
    if (stopping) {
      process.stderr.write(`${signal}: stopping at once, the shutdown had not finished\n`);
      process.exit(1);
    }
    stopping = true;
    if (urlFile) rmSync(urlFile, { force: true });
    process.stdout.write(`${signal}: shutting down, flushing state… (send it again to stop at once)\n`);
    hub.close().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`shutdown failed: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  const reload = () => {
    hub.reloadTokens().then(
      (count) => process.stdout.write(`SIGHUP: ${count} tokens in force\n`),
      (error: Error) => {
        process.stderr.write(`SIGHUP: tokens not reloaded: ${error.message}\n`);
        // In the log too, where a successful reload is: a shipper that reads only the JSON lines would not see it failed.
        hub.log.error({ reason: error.message }, 'tokens not reloaded: the tokens in force are kept');
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', reload);
  // Only now: a signal with no listener at all gets its default action, which ends the process (SIGHUP too).
  letGo();
  // What came while the hub was starting: a stop wins over a reload.
  const stopAsked = early.find((signal) => signal !== 'SIGHUP');
  if (stopAsked) stop(stopAsked);
  else if (early.includes('SIGHUP')) reload();
}
