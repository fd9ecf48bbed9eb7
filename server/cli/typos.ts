import { CliError } from './common.ts';

/** How many single-letter edits (an insertion, a deletion, a change, or two neighbours swapped) turn `a` into `b`. */
function edits(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The name among `known` that `given` most likely misspells (two edits at most, or the same letters apart from separators and case). */
export function nearest(given: string, known: readonly string[]): string | undefined {
  const plain = (name: string) => name.replace(/[^a-z]/gi, '').toLowerCase();
  return known
    .map((name) => ({ name, distance: plain(name) === plain(given) ? 0 : edits(name, given) }))
    .filter(({ distance }) => distance <= 2)
    .sort((a, b) => a.distance - b.distance)[0]?.name;
}

/**
 * Node's parseArgs refusal of an unknown option (`Unknown option '--data-dri'. To specify a positional
 * argument starting with a '-', ...`) as one line naming the command, the nearest option its help
 * lists (a typo, `--datadir`, `--data_dir`) and where the options are; undefined for any other error.
 */
export function unknownOption(command: string, help: string, error: unknown): CliError | undefined {
  if ((error as NodeJS.ErrnoException | undefined)?.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return undefined;
  const given = /'(-[^']*)'/.exec((error as Error).message)?.[1] ?? (error as Error).message;
  const near = nearest(given, [...new Set(help.match(/--[a-z][a-z-]*/g) ?? [])]);
  return new CliError(`unknown option ${given} for switchboard ${command}${near ? ` (did you mean ${near}?)` : ''}; switchboard ${command} --help lists its options`);
}
