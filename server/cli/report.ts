import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CliError, getFromHub, HUB_FLAGS, hubAddress, progress, progressDone, refuseEmptyFlags } from './common.ts';

export const REPORT_HELP = `switchboard report — a report of one workflow from a running hub

Usage: switchboard report <workflow> [--format md|html|json] [--out FILE] [--url URL] [--token TOKEN] [--data-dir DIR]

  --format F      md (default), html or json
  --out FILE      write to FILE instead of standard output
  --url, --token, --data-dir   as for switchboard status
`;

const FORMATS = ['md', 'html', 'json'] as const;

/** `switchboard report <workflow>`: fetches a report and prints or saves it. */
export async function report(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'md' },
      out: { type: 'string' },
      ...HUB_FLAGS,
    },
  });
  if (values.help) return void process.stdout.write(REPORT_HELP);
  refuseEmptyFlags(values);
  const [workflowId, ...extra] = positionals;
  if (!workflowId || extra.length) throw new CliError('give exactly one workflow id: switchboard report <workflow>');
  const format = values.format as (typeof FORMATS)[number];
  if (!FORMATS.includes(format)) throw new CliError(`--format must be one of ${FORMATS.join(', ')}, got "${values.format}"`);
  const address = await hubAddress(values);
  progress(`rendering the ${format} report of ${workflowId}…`);
  const response = await getFromHub(address, `/api/workflows/${encodeURIComponent(workflowId)}/report.${format}`);
  const body = await response.text();
  progressDone();
  if (!values.out) return void process.stdout.write(body.endsWith('\n') ? body : body + '\n');
  try {
    writeFileSync(values.out, body);
  } catch (error) {
    // Node's message alone ("ENOENT: no such file or directory, open ...") does not say what was being done.
    throw new CliError(`cannot write the report to ${values.out}: ${(error as Error).message}`);
  }
  process.stderr.write(`wrote ${values.out} (${Buffer.byteLength(body)} bytes, version ${response.headers.get('x-switchboard-version')})\n`);
}
