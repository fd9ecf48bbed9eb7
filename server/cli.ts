import { readFileSync } from 'node:fs';
import { CliError } from './cli/common.ts';
import { nearest, unknownOption } from './cli/typos.ts';

/** A command: what runs it, and its --help text. */
interface Command {
  run: (args: string[]) => Promise<void>;
  help: string;
}

/** The commands, each loaded when run: `status` needs none of the hub, `start` none of the others. */
const commands: Record<string, () => Promise<Command>> = {
  start: async () => import('./cli/start.ts').then((m) => ({ run: m.start, help: m.START_HELP })),
  status: async () => import('./cli/status.ts').then((m) => ({ run: m.status, help: m.STATUS_HELP })),
  report: async () => import('./cli/report.ts').then((m) => ({ run: m.report, help: m.REPORT_HELP })),
  tokens: async () => import('./cli/tokens.ts').then((m) => ({ run: m.tokens, help: m.TOKENS_HELP })),
  prune: async () => import('./cli/prune.ts').then((m) => ({ run: m.prune, help: m.PRUNE_HELP })),
  retry: async () => import('./cli/retry.ts').then((m) => ({ run: m.retry, help: m.RETRY_HELP })),
  pause: async () => import('./cli/pause.ts').then((m) => ({ run: m.pause, help: m.PAUSE_HELP })),
  resume: async () => import('./cli/pause.ts').then((m) => ({ run: m.resume, help: m.RESUME_HELP })),
  reload: async () => import('./cli/reload.ts').then((m) => ({ run: m.reload, help: m.RELOAD_HELP })),
  backup: async () => import('./cli/backup.ts').then((m) => ({ run: m.backup, help: m.BACKUP_HELP })),
};

/** The overview and every command's options. */
async function help(): Promise<string> {
  const helps = await Promise.all(Object.values(commands).map(async (load) => (await load()).help));
  return `switchboard — a real-time coordination hub for multi-agent workflows

Usage: switchboard <command> [options]     (switchboard <command> --help for its options)
       switchboard --version

Commands:
  start     run a hub; prints its URL, dashboard address and tokens
  status    the workflows and agents of a running hub
  report    a report (md, html or json) of one workflow
  tokens    list, create or revoke access tokens
  prune     delete archived workflows older than an age
  retry     put a failed work order back in the queue, or offer a declined one again
  pause     stop offering a workflow's work orders until it is resumed
  resume    offer a paused workflow's work orders again
  reload    make a running hub read its tokens again (SIGHUP to its pid)
  backup    copy a hub's data directory, also while it runs

${helps.join('\n')}`;
}

/**
 * The package's version, from the nearest package.json named switchboard above this module: the
 * sources sit one folder below it, the bundle in dist/ one, and its compiled twin two.
 */
function version(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'switchboard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // None here, or not JSON: look further up.
    }
    if (dir.pathname === '/') throw new CliError('the package.json of switchboard was not found above the CLI');
  }
}

/** Reports an error as one line on stderr and exits non-zero. */
function fail(error: unknown): never {
  process.stderr.write(`switchboard: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}

/**
 * A reader that went away (`switchboard report wf | head`) ends a client command quietly, as
 * other Unix tools do, instead of with an unhandled EPIPE and its stack. Not for `start`: a hub
 * does not stop because whoever read its output did.
 */
function endQuietlyWhenTheReaderLeaves(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? process.exit(0) : fail(error)));
  }
}

const [command, ...rest] = process.argv.slice(2);
if (command !== 'start') endQuietlyWhenTheReaderLeaves();
if (command === 'help' && rest[0] !== undefined && commands[rest[0]]) {
  // `switchboard help start`, as git and npm read it: that command's options.
  commands[rest[0]]!().then(({ help }) => process.stdout.write(help), fail);
} else if (!command || command === '--help' || command === '-h' || command === 'help') {
  help().then((text) => process.stdout.write(text), fail);
} else if (command === '--version' || command === '-v' || command === 'version') {
  try {
    process.stdout.write(`${version()}\n`);
  } catch (error) {
    fail(error);
  }
} else if (!commands[command]) {
  const near = nearest(command, Object.keys(commands));
  fail(new CliError(`unknown command "${command}"${near ? ` (did you mean ${near}?)` : ''}; run switchboard --help`));
} else {
  commands[command]!()
    .then(({ run, help }) => run(rest).catch((error: unknown) => Promise.reject(unknownOption(command, help, error) ?? error)))
    .catch(fail);
}
