/**
 * `npm run bench`: the benchmark suite against raw socket.io (issue #7).
 *
 *   npm run bench                          full run (~3½ min): writes test/bench/results/latest.json and BENCHMARKS.md
 *   npm run bench -- --quick               a short run: writes test/bench/results/quick.json and quick.md
 *   npm run bench -- --only progress,assign
 *   npm run bench -- --profile DIR         hubs and the raw server run under --cpu-prof; profiles land in DIR
 *   npm run bench -- --note "quiet machine"
 *   npm run bench -- --from-json test/bench/results/latest.json   re-render BENCHMARKS.md (after editing findings.md)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toMarkdown, toText } from './report.ts';
import { runSuite, SCENARIOS, type ScenarioName } from './suite.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean' },
    smoke: { type: 'boolean' },
    only: { type: 'string' },
    profile: { type: 'string' },
    note: { type: 'string' },
    json: { type: 'string' },
    markdown: { type: 'string' },
    'from-json': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  process.stdout.write(`usage: npm run bench -- [--quick | --smoke] [--only ${SCENARIOS.join(',')}] [--profile DIR] [--note TEXT] [--json FILE] [--markdown FILE] [--from-json FILE]\n`);
  process.exit(0);
}

const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean) as ScenarioName[] | undefined;
for (const name of only ?? []) {
  if (!SCENARIOS.includes(name)) {
    process.stderr.write(`unknown scenario "${name}"; choose from ${SCENARIOS.join(', ')}\n`);
    process.exit(2);
  }
}
const scale = values.smoke ? 'smoke' : values.quick ? 'quick' : 'full';
const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
const stem = scale === 'full' ? 'latest' : scale;
const jsonFile = values.json ?? `${resultsDir}${stem}.json`;
const markdownFile = values.markdown ?? (scale === 'full' ? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url)) : `${resultsDir}${stem}.md`);

if (values['from-json']) {
  // Re-render the Markdown (e.g. after editing findings.md) from a results file, without running anything.
  const saved = JSON.parse(readFileSync(values['from-json'], 'utf8')) as Awaited<ReturnType<typeof runSuite>>;
  const target = values.markdown ?? fileURLToPath(new URL('../../BENCHMARKS.md', import.meta.url));
  writeFileSync(target, toMarkdown(saved, readFileSync(new URL('./findings.md', import.meta.url), 'utf8')));
  process.stdout.write(`${toText(saved)}\n\nwrote ${target}\n`);
  process.exit(0);
}

const started = Date.now();
const result = await runSuite({
  scale,
  ...(only ? { only } : {}),
  ...(values.profile ? { profileDir: values.profile } : {}),
  note: values.note ?? '',
  command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a))] : [])].join(' '),
  log: (message) => process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`),
});

mkdirSync(resultsDir, { recursive: true });
writeFileSync(jsonFile, JSON.stringify(result, null, 2) + '\n');
const findings = readFileSync(new URL('./findings.md', import.meta.url), 'utf8');
writeFileSync(markdownFile, toMarkdown(result, findings));
process.stdout.write(`\n${toText(result)}\n\nwrote ${jsonFile}\nwrote ${markdownFile}\n`);
process.exit(result.failures.length > 0 ? 1 : 0);
