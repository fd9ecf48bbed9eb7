import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LOCK_FILE, lockHolder } from '../store/lock.ts';
import { CliError, dataDirOf, HUB_URL_FILE, integer, refuseEmptyFlags } from './common.ts';

export const RELOAD_HELP = `switchboard reload — make a running hub read its tokens again (sends it SIGHUP)

Usage: switchboard reload [--data-dir DIR | --pid PID]

  --data-dir DIR  the hub's data directory, whose hub.lock holds its pid (default ./.switchboard);
                  refused for a hub an application embeds (it calls hub.reloadTokens()), whose
                  process a SIGHUP would end                           [SWITCHBOARD_DATA_DIR]
  --pid PID       the hub's pid, as its banner prints it (a cluster node keeps no hub.lock)

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
        'An application embedding createHub reloads with hub.reloadTokens(); to signal it anyway, pass --pid',
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
  const pid = values.pid !== undefined ? integer('--pid', values.pid)! : hubPidOf(dataDirOf(values['data-dir']));
  // 0 and negative pids name process groups (this one's included): never what is meant.
  // Above 2^31 - 1 Node's own refusal reads "must be of type number. Received type number".
  if (pid <= 0 || pid > 2 ** 31 - 1) throw new CliError(`--pid must be a process id above 0, got ${pid}`);
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
