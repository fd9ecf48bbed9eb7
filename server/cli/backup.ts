import { parseArgs } from 'node:util';
import { backupDataDir } from '../store/backup.ts';
import { CliError, dataDirOf, refuseEmptyFlags } from './common.ts';

export const BACKUP_HELP = `switchboard backup — copy a hub's data directory, also while the hub runs

Usage: switchboard backup --to DEST [--data-dir DIR]

  --to DEST       where the copy goes: a directory that does not exist yet, or an empty one
  --data-dir DIR  the hub's data directory (default: $SWITCHBOARD_DATA_DIR, else ./.switchboard)

A hub started on DEST (switchboard start --data-dir DEST) holds every change acknowledged before
the backup began. Restoring is starting a hub on the copy (or on a copy of it).
`;

/** `switchboard backup --to DEST`: a consistent copy of a (running) hub's data directory. */
export async function backup(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      to: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(BACKUP_HELP);
  refuseEmptyFlags(values, [], ['to']);
  if (values.to === undefined) throw new CliError('say where the copy goes: switchboard backup --to DEST');
  const source = dataDirOf(values['data-dir']);
  let result;
  try {
    result = await backupDataDir(source, values.to);
  } catch (error) {
    throw new CliError(`backup of ${source} failed: ${(error as Error).message}`);
  }
  process.stdout.write(
    `backed up ${source} to ${values.to}: journal up to record ${result.seq} (${result.segments} segment(s) after the snapshot), ${result.archived} archived workflow(s); start a hub on it to restore\n`,
  );
  for (const warning of result.warnings) process.stderr.write(`warning: the copy: ${warning}\n`);
  if (result.lostArchived.length > 0) {
    const shown = result.lostArchived.slice(0, 10).join(', ');
    const more = result.lostArchived.length > 10 ? ` and ${result.lostArchived.length - 10} more` : '';
    process.stderr.write(`warning: ${result.lostArchived.length} archived workflow(s) named by ${source}/archive/index.jsonl have no file there (${shown}${more}): they could not be copied, and reading them fails on the source as on the copy\n`);
  }
}
