import { CliError } from './cli/common.ts';
import { report, REPORT_HELP } from './cli/report.ts';
import { start, START_HELP } from './cli/start.ts';
import { status, STATUS_HELP } from './cli/status.ts';
import { tokens, TOKENS_HELP } from './cli/tokens.ts';

const HELP = `switchboard — a real-time coordination hub for multi-agent workflows

Usage: switchboard <command> [options]     (switchboard <command> --help for its options)

Commands:
  start     run a hub; prints its URL, dashboard address and tokens
  status    the workflows and agents of a running hub
  report    a report (md, html or json) of one workflow
  tokens    list or create access tokens

${START_HELP}
${STATUS_HELP}
${REPORT_HELP}
${TOKENS_HELP}`;

const commands: Record<string, (args: string[]) => Promise<void>> = { start, status, report, tokens };

/** Reports an error as one line on stderr and exits non-zero. */
function fail(error: unknown): never {
  process.stderr.write(`switchboard: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
}

const [command, ...rest] = process.argv.slice(2);
if (!command || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(HELP);
} else if (!commands[command]) {
  fail(new CliError(`unknown command "${command}"; run switchboard --help`));
} else {
  commands[command](rest).catch(fail);
}
