import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createHub } from './index.ts';
import type { HubOptionsInput } from './options.ts';

const HELP = `switchboard — a real-time coordination hub for multi-agent workflows

Usage:
  switchboard start [--config FILE] [--tokens FILE] [--port N] [--host H] [--data-dir DIR] [--fsync] [--log-level L]

Commands:
  start     Start a hub. Prints its URL and the tokens to use.

Options (environment variable in brackets):
  --config FILE     JSON file with any createHub option (see README); flags win [SWITCHBOARD_CONFIG]
  --tokens FILE     JSON token list [{ token, role, agentId?, workflows? }]  [SWITCHBOARD_TOKENS_FILE]
                    (or the list itself as JSON in SWITCHBOARD_TOKENS); default: generated once
                    into the data directory's tokens.json
  --port N          TCP port, 0 for any free one      [SWITCHBOARD_PORT]      default 4700
  --host H          interface to listen on            [SWITCHBOARD_HOST]      default 127.0.0.1
  --data-dir DIR    journal, snapshot and tokens      [SWITCHBOARD_DATA_DIR]  default ./.switchboard
  --fsync           flush the journal to disk on every batch  [SWITCHBOARD_FSYNC=1]
  --log-level L     debug | info | warn | error | silent      [SWITCHBOARD_LOG_LEVEL] default info
  -h, --help        this help
`;

/** Exits with a clear message and a non-zero status. */
function fail(message: string): never {
  process.stderr.write(`switchboard: ${message}\n`);
  process.exit(2);
}

function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value)) fail(`${name} must be a whole number, got "${text}"`);
  return value;
}

/** The options in a JSON config file; createHub validates them. */
function readConfig(file: string): HubOptionsInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    fail(`cannot read config ${file}: ${(error as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail(`config ${file} must hold a JSON object`);
    return parsed as HubOptionsInput;
  } catch (error) {
    fail(`config ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** `switchboard start`: runs a hub until SIGINT or SIGTERM, then shuts it down cleanly. */
async function start(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      tokens: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      fsync: { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(HELP);
  const env = process.env;
  const configFile = values.config ?? env.SWITCHBOARD_CONFIG;
  const options: HubOptionsInput = configFile ? readConfig(configFile) : {};
  const tokensFile = values.tokens ?? env.SWITCHBOARD_TOKENS_FILE;
  if (tokensFile) options.tokensFile = tokensFile;
  if (env.SWITCHBOARD_TOKENS) {
    try {
      options.tokens = JSON.parse(env.SWITCHBOARD_TOKENS) as NonNullable<HubOptionsInput['tokens']>;
    } catch (error) {
      fail(`SWITCHBOARD_TOKENS is not valid JSON: ${(error as Error).message}`);
    }
  }
  const port = integer('--port', values.port ?? env.SWITCHBOARD_PORT);
  if (port !== undefined) options.port = port;
  const host = values.host ?? env.SWITCHBOARD_HOST;
  if (host) options.host = host;
  const dataDir = values['data-dir'] ?? env.SWITCHBOARD_DATA_DIR;
  if (dataDir) options.dataDir = dataDir;
  if (values.fsync || env.SWITCHBOARD_FSYNC === '1') options.fsync = true;
  const logLevel = values['log-level'] ?? env.SWITCHBOARD_LOG_LEVEL;
  if (logLevel) options.logLevel = logLevel as NonNullable<HubOptionsInput['logLevel']>;

  const hub = await createHub(options);
  const lines = [
    `Switchboard hub listening on ${hub.url}`,
    `  data directory: ${hub.options.dataDir}`,
    `  tokens${hub.tokensCreated ? ' (generated, saved in the data directory)' : ''}:`,
    ...hub.tokens.map((t) => `    ${t.role.padEnd(8)}${t.token}${t.name ? `  (${t.name})` : ''}`),
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: shutting down, flushing state…\n`);
    hub.close().then(
      () => process.exit(0),
      (error: Error) => {
        process.stderr.write(`shutdown failed: ${error.message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => Promise<void>> = { start };
if (!command || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(HELP);
} else if (!commands[command]) {
  fail(`unknown command "${command}"; run switchboard --help`);
} else {
  commands[command](rest).catch((error: Error) => fail(error.message));
}
