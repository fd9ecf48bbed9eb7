/**
 * `npm run bench`: the benchmark suite, each hub figure beside raw socket.io's (README.md here).
 *
 *   npm run bench                        full run (~25 min): writes results/latest.json and the figures in BENCHMARKS.md
 *   npm run bench -- --quick             a short run: writes results/quick.json and quick.md
 *   npm run bench -- --only progress,assign   some scenarios; a full-scale one writes results/partial.json and .md
 *   npm run bench -- --only soak --minutes 60   the soak's lifecycles for an hour instead of 10 minutes
 *   npm run bench -- --profile DIR       hubs and raw servers run under --cpu-prof, writing their profiles into DIR
 *   npm run bench -- --note "quiet machine"
 *   npm run bench -- --from-json test/bench/results/latest.json   rewrites the figures in BENCHMARKS.md, running nothing
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toMarkdown, toText, withFigures, type BenchResult } from './report.ts';
import { runSuite, SCENARIOS, type ScenarioName } from './suite.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean' },
    smoke: { type: 'boolean' },
    only: { type: 'string' },
    minutes: { type: 'string' },
    profile: { type: 'string' },
    note: { type: 'string' },
    'from-json': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--quick | --smoke] [--only ${SCENARIOS.join(',')}] [--minutes N] [--profile DIR] [--note TEXT] [--from-json FILE]\n`);
  process.exit(0);
}

const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean) as ScenarioName[] | undefined;
for (const name of only ?? []) {
  if (!SCENARIOS.includes(name)) {
    process.stderr.write(`unknown scenario "${name}"; choose from ${SCENARIOS.join(', ')}\n`);
    process.exit(2);
  }
}
const soakMinutes = values.minutes === undefined ? undefined : Number(values.minutes);
if (soakMinutes !== undefined && !(soakMinutes > 0)) {
  process.stderr.write(`--minutes takes a positive number of minutes, not "${values.minutes}"\n`);
  process.exit(2);
}
const scale = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const benchmarksFile = fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
// Only a complete full run replaces the committed figures.
const stem = scale !== 'full' ? scale : only ? 'partial' : 'latest';

/** Writes the figures: into BENCHMARKS.md for the latest full run, else into results/<stem>.md. */
function writeFigures(result: BenchResult, latest: boolean): string {
  const target = latest ? benchmarksFile : `${resultsDir}${stem}.md`;
  writeFileSync(target, latest ? withFigures(readFileSync(target, 'utf8'), toMarkdown(result)) : `${toMarkdown(result)}\n`);
  return target;
}

if (values['from-json']) {
  const saved = JSON.parse(readFileSync(values['from-json'], 'utf8')) as BenchResult;
  process.stdout.write(`${toText(saved)}\n\nwrote ${writeFigures(saved, true)}\n`);
  process.exit(0);
}

const started = Date.now();
const result = await runSuite({
  scale,
  ...(only ? { only } : {}),
  ...(soakMinutes ? { soakMinutes } : {}),
  ...(values.profile ? { profileDir: values.profile } : {}),
  note: values.note ?? '',
  command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a))] : [])].join(' '),
  log: (message) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`),
});

mkdirSync(resultsDir, { recursive: true });
const jsonFile = `${resultsDir}${stem}.json`;
writeFileSync(jsonFile, JSON.stringify(result, null, 2) + '\n');
const markdownFile = writeFigures(result, stem === 'latest');
process.stdout.write(`\n${toText(result)}\n\nwrote ${jsonFile}\nwrote ${markdownFile}\n`);
process.exit(result.failures.length > 0 ? 1 : 0);
