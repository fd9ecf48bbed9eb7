import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { LOCK_FILE, lockHolder, processAlive } from '../store/lock.ts';
import { printable } from '../../shared/printable.ts';
import { CliError, dataDirOf, HUB_URL_FILE, integer, refuseEmptyFlags } from './common.ts';

export const RELOAD_HELP = `switchboard reload — make a running hub read its tokens again (sends it SIGHUP)

Usage: switchboard reload [--data-dir DIR | --pid PID]

  --data-dir DIR  the hub's data directory, whose hub.lock holds its pid (default ./.switchboard);
                  refused for a hub an application embeds (it calls hub.reloadTokens()), whose
                  process a SIGHUP would end                           [SWITCHBOARD_DATA_DIR]
  --pid PID       the hub's pid, as its banner prints it (a cluster node keeps no hub.lock); refused
                  unless it is a hub 'switchboard start' runs (the data directory's hub.lock names
                  it, or its command line shows it), since a SIGHUP ends most other processes

The hub reads its tokens again (its --tokens file, the data directory's tokens.json, or a cluster's
PostgreSQL), closes the connections whose token is gone, and prints "SIGHUP: N tokens in force".
Signal the hub itself, not npm: under \`npm start\` a SIGHUP to npm stops npm and leaves the hub.
`;

/** The pid of the hub that holds a data directory, or a CliError saying why there is none. */
function hubPidOf(dataDir: string): number {
  const pid = lockHolder(dataDir);
  if (pid === undefined) {
    throw new CliError(`no hub holds ${dataDir}: ${join(dataDir, LOCK_FILE)} is missing or names a process that has ended (a cluster node keeps none: pass --pid)`);
  }
  // Only 'switchboard start' reloads on SIGHUP (and notes hub.url once started): to an application
  // that embeds createHub, SIGHUP's default action is to end it.
  if (!existsSync(join(dataDir, HUB_URL_FILE))) {
    throw new CliError(
      `the hub holding ${dataDir} (pid ${pid}) is not one 'switchboard start' runs, or is still starting: a SIGHUP could end its process. ` +
        'An application embedding createHub reloads with hub.reloadTokens() (if it does so on SIGHUP, send that with kill -HUP)',
    );
  }
  return pid;
}

/** The arguments process `pid` was started with (from /proc, else from ps, split at spaces), or undefined where neither can say. */
function commandLineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    // No /proc (macOS, the BSDs): ps gives the command line as one string.
    try {
      const line = execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      return line ? line.split(/\s+/) : undefined;
    } catch {
      return undefined;
    }
  }
}

/**
 * Whether a command line is node running `switchboard start`: the script (bin/switchboard.mjs, its
 * npm link `switchboard`, or the bundled CLI, dist/cli.mjs) followed by `start`. npm, sh, tsx's
 * parent process and a mistyped pid do not match.
 */
function runsSwitchboardStart(command: string[]): boolean {
  const script = /^(switchboard(\.mjs)?|cli\.(mjs|ts))$/;
  return /^node/.test(basename(command[0] ?? '')) && command.some((arg, i) => script.test(basename(arg)) && command[i + 1] === 'start');
}

/**
 * `pid`, once it is known to be a hub 'switchboard start' runs (the data directory's hub.lock names
 * it, or its command line shows it), or a CliError saying why not: SIGHUP ends a process that
 * does not handle it (npm, a shell, whatever a typo names).
 */
function checkedHubPid(pid: number): number {
  const command = commandLineOf(pid);
  if (command && runsSwitchboardStart(command)) return pid;
  // The data directory's hub.lock vouches where the command line cannot (no /proc, another script
  // name); hubPidOf refuses an application that embeds createHub, with its reason.
  const dataDir = dataDirOf(undefined);
  if (lockHolder(dataDir) === pid) return hubPidOf(dataDir);
  if (!processAlive(pid)) throw new CliError(`no process ${pid}: is the hub running?`);
  if (command === undefined) {
    throw new CliError(
      `cannot tell whether process ${pid} is a hub (neither /proc/${pid}/cmdline nor ps shows its command line, and ${join(dataDir, LOCK_FILE)} does not name it): ` +
        "pass the hub's --data-dir instead, or, for a cluster node you know the pid of, send the signal with kill -HUP",
    );
  }
  if (!runsSwitchboardStart(command)) {
    const shown = printable(command.join(' '));
    throw new CliError(
      `process ${pid} is not a hub 'switchboard start' runs (it runs ${shown.length > 80 ? `${shown.slice(0, 80)}…` : shown}), and a SIGHUP would likely end it; ` +
        "signal the hub's own pid, as its banner prints it (under npm start, not npm's), or pass --data-dir",
    );
  }
  return pid;
}

/** `switchboard reload`: sends SIGHUP to the hub of a data directory, or to a pid. */
export async function reload(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'data-dir': { type: 'string' }, pid: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return void process.stdout.write(RELOAD_HELP);
  refuseEmptyFlags(values, ['pid']);
  if (values.pid !== undefined && values['data-dir'] !== undefined) throw new CliError('give --data-dir or --pid, not both');
  let pid = values.pid !== undefined ? integer('--pid', values.pid)! : hubPidOf(dataDirOf(values['data-dir']));
  // 0 and negative pids name process groups (this one's included): never what is meant.
  // Above 2^31 - 1 Node's own refusal reads "must be of type number. Received type number".
  if (pid <= 0 || pid > 2 ** 31 - 1) throw new CliError(`--pid must be a process id above 0, got ${pid}`);
  if (values.pid !== undefined) pid = checkedHubPid(pid);
  try {
    process.kill(pid, 'SIGHUP');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw new CliError(`no process ${pid}: is the hub running?`);
    if (code === 'EPERM') throw new CliError(`not allowed to signal process ${pid} (run as the hub's user)`);
    throw error;
  }
  process.stdout.write(`sent SIGHUP to the hub (pid ${pid}); it reloads its tokens and prints how many are in force\n`);
}
