import { CliError } from './common.ts';

/** How many single-letter edits turn `a` into `b` (Levenshtein), for the nearest option to a typo. */
function edits(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * Node's parseArgs refusal of an unknown option (`Unknown option '--data-dri'. To specify a positional
 * argument starting with a '-', ...`) as one line naming the command, the nearest option its help
 * lists (a typo, `--datadir`, `--data_dir`) and where the options are; undefined for any other error.
 */
export function unknownOption(command: string, help: string, error: unknown): CliError | undefined {
  if ((error as NodeJS.ErrnoException | undefined)?.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return undefined;
  const given = /'(-[^']*)'/.exec((error as Error).message)?.[1] ?? (error as Error).message;
  const known = [...new Set(help.match(/--[a-z][a-z-]*/g) ?? [])];
  const plain = (option: string) => option.replace(/[^a-z]/gi, '').toLowerCase();
  const nearest = known
    .map((option) => ({ option, distance: plain(option) === plain(given) ? 0 : edits(option, given) }))
    .filter(({ distance }) => distance <= 2)
    .sort((a, b) => a.distance - b.distance)[0]?.option;
  return new CliError(`unknown option ${given} for switchboard ${command}${nearest ? ` (did you mean ${nearest}?)` : ''}; switchboard ${command} --help lists its options`);
}
