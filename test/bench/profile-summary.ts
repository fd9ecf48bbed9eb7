/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --profile DIR`): the functions with the
 * most self time, and the project functions with the most inclusive time.
 *
 *   npx tsx test/bench/profile-summary.ts DIR/hub-progress-….cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const [file, topText] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-summary FILE.cpuprofile [top]\n');
  process.exit(2);
}
const top = Number(topText ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const totalMs = (profile.endTime - profile.startTime) / 1000;
const msPerSample = totalMs / Math.max(1, profile.samples.length);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

const where = (node: ProfileNode) => {
  const url = node.callFrame.url.replace(/^file:\/\/.*?\/(server|shared|client-sdk|test|node_modules)\//, '$1/');
  return `${node.callFrame.functionName || '(anonymous)'} ${url}:${node.callFrame.lineNumber + 1}`;
};
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const node of profile.nodes) {
  const ms = (node.hitCount ?? 0) * msPerSample;
  if (ms === 0) continue;
  self.set(where(node), (self.get(where(node)) ?? 0) + ms);
  // Each frame on the stack once, however deep the recursion.
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const key = where(byId.get(id)!);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
  }
}
const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
const busy = totalMs - idle;
const print = (title: string, entries: Map<string, number>, filter: (key: string) => boolean) => {
  process.stdout.write(`\n${title}\n`);
  for (const [key, ms] of [...entries].filter(([k]) => filter(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${ms.toFixed(0).padStart(8)} ms ${((ms / busy) * 100).toFixed(1).padStart(5)} %  ${key}\n`);
  }
};
process.stdout.write(`${file}\n${totalMs.toFixed(0)} ms profiled, ${busy.toFixed(0)} ms busy\n`);
/** Self time by area: a package, a project folder, node's internals, GC. */
const areas = new Map<string, number>();
for (const [key, ms] of self) {
  if (key.startsWith('(idle)')) continue;
  const area =
    /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(key)?.[1] ??
    /^\S+ ((?:server|shared|client-sdk|test)\/[^/:]+)/.exec(key)?.[1] ??
    (key.includes('node:') ? 'node internals' : key.startsWith('(garbage') ? 'GC' : 'native and other');
  areas.set(area, (areas.get(area) ?? 0) + ms);
}
print('self time by area', areas, () => true);
print('self time', self, (k) => !k.startsWith('(idle)'));
print('inclusive time, project code', inclusive, (k) => /(server|shared|client-sdk)\//.test(k));
