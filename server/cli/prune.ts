import { parseArgs } from 'node:util';
import { CliError, controlClientOf, duration, HUB_FLAGS, hubAddress, refuseEmptyFlags, table } from './common.ts';

export const PRUNE_HELP = `switchboard prune — delete archived workflows from a running hub

Usage: switchboard prune --older-than DURATION [--url URL] [--token TOKEN] [--data-dir DIR] [--json]

  --older-than D  delete archived workflows that ended more than D ago: 30d, 12h, 90m, 45s
  --url, --token, --data-dir   as for switchboard status (the token must be an admin token)
  --json          print the deleted workflows as JSON
`;

/** `switchboard prune --older-than 30d`: deletes archived workflows past an age and says which. */
export async function prune(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      'older-than': { type: 'string' },
      ...HUB_FLAGS,
      json: { type: 'boolean' },
    },
  });
  if (values.help) return void process.stdout.write(PRUNE_HELP);
  refuseEmptyFlags(values, [], ['older-than']);
  if (values['older-than'] === undefined) throw new CliError('say how old: switchboard prune --older-than 30d');
  const olderThanMs = duration('--older-than', values['older-than']);
  const address = await hubAddress(values);
  const control = await controlClientOf(address);
  try {
    const removed = await control.pruneArchive(olderThanMs);
    if (values.json) return void process.stdout.write(JSON.stringify({ removed }, null, 2) + '\n');
    const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString());
    const lines = [`deleted ${removed.length} archived workflow(s) that ended more than ${values['older-than']} ago`];
    if (removed.length) lines.push('', table(['WORKFLOW', 'STATUS', 'ENDED'], removed.map((item) => [item.workflowId, item.status, when(item.endedAt)])));
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await control.close();
  }
}
