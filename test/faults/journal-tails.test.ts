import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../../client-sdk/index.ts';
import { tempDir, TOKENS } from '../helpers/hub.ts';
import { CLI } from '../helpers/process.ts';
import { HubUnderTest } from './cluster.ts';

/** The newest journal segment of a data directory. */
function lastSegment(dataDir: string): string {
  const segments = readdirSync(dataDir).filter((f) => f.endsWith('.journal')).sort();
  return join(dataDir, segments[segments.length - 1]!);
}

/** Makes `count` acknowledged progress changes and returns the workflow state after each. */
async function changes(url: string, workflowId: string, from: number, count: number) {
  const client = await connectControl({ url, token: TOKENS.admin });
  const wf = client.workflow(workflowId);
  const states = [];
  for (let i = from; i < from + count; i++) {
    await wf.updateProgress('loading', i);
    states.push({ version: wf.version, progress: i });
  }
  client.close();
  return states;
}

describe('journal tails and the data directory lock', () => {
  it('recovers from a torn and from a corrupted last record, keeps everything before it, and refuses a second hub', async () => {
    const dataDir = tempDir();
    const hub = await HubUnderTest.create(dataDir);
    await hub.start();
    const client = await connectControl({ url: hub.url, token: TOKENS.admin });
    const wf = await client.createWorkflow({ id: 'tails', userQuery: 'torn journals' });
    await wf.start();
    client.close();
    const first = await changes(hub.url, 'tails', 1, 20);

    // A second hub on the same directory is refused with a clear message while the first runs.
    const second = spawnSync(process.execPath, [...CLI, 'start', '--port', '0', '--data-dir', dataDir], { encoding: 'utf8', timeout: 20_000 });
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/in use by another hub/);

    // kill -9, then tear the last record in half, as a crash mid-write would.
    await hub.crash();
    const segment = lastSegment(dataDir);
    const text = readFileSync(segment, 'utf8');
    const lastLine = text.slice(text.lastIndexOf('\n', text.length - 2) + 1);
    truncateSync(segment, Buffer.byteLength(text) - Math.floor(lastLine.length / 2));
    const restarted = await hub.start();
    expect(restarted.output()).toMatch(/dropped a torn or corrupt last record/);
    const check = await connectControl({ url: hub.url, token: TOKENS.admin });
    const afterTear = await check.workflow('tails').get();
    expect(afterTear.stages.loading!.progress).toBe(first[first.length - 2]!.progress);
    check.close();

    // More changes, kill -9, then corrupt bytes inside the last record (its checksum no longer matches).
    const more = await changes(hub.url, 'tails', 50, 10);
    await hub.crash();
    const newest = lastSegment(dataDir);
    const body = readFileSync(newest, 'utf8');
    const lineStart = body.lastIndexOf('\n', body.length - 2) + 1;
    const at = lineStart + Math.floor((body.length - lineStart) / 2);
    writeFileSync(newest, body.slice(0, at) + (body[at] === '~' ? '^' : '~') + body.slice(at + 1));
    const again = await hub.start();
    expect(again.output()).toMatch(/dropped a torn or corrupt last record/);
    const verify = await connectControl({ url: hub.url, token: TOKENS.admin });
    const afterCorruption = await verify.workflow('tails').get();
    expect(afterCorruption.stages.loading!.progress).toBe(more[more.length - 2]!.progress);
    expect(afterCorruption.status).toBe('in_progress');
    verify.close();
    expect(await hub.stop()).toBe(0);
  }, 120_000);
});

/** A journal line's JSON (its layout in server/store/records.ts). */
const lineJson = (line: string) => JSON.parse(line.slice(9)) as unknown[];
/** A line's place in its batch: the trailing element a flat line carries past its triples, 0 when it has none. */
const positionOf = (line: string) => {
  const json = lineJson(line);
  return (json.length - 2) % 3 === 1 ? (json[json.length - 1] as number) : 0;
};

describe('with fsync, a power loss in the middle of a batch', () => {
  it('starts without the damaged last batch, which was never acknowledged, and refuses damage to a batch before it', async () => {
    const dataDir = tempDir();
    const hub = await HubUnderTest.create(dataDir, { fsync: true });
    await hub.start();
    const client = await connectControl({ url: hub.url, token: TOKENS.admin });
    const wf = await client.createWorkflow({ id: 'batches', userQuery: 'a power loss mid-batch' });
    await wf.start();
    // Changes sent together are written together, while the fsync before them runs: rounds until the last batch holds four or more.
    let lines: string[] = [];
    for (let round = 0; round < 50 && !(lines.length > 0 && positionOf(lines[lines.length - 1]!) >= 3); round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => wf.updateProgress('loading', round * 100 + i)));
      lines = readFileSync(lastSegment(dataDir), 'utf8').split('\n').slice(0, -1);
    }
    const last = positionOf(lines[lines.length - 1]!);
    expect(last).toBeGreaterThanOrEqual(3);
    const first = lines.length - 1 - last;
    client.close();
    await hub.crash();

    const segment = lastSegment(dataDir);
    const original = readFileSync(segment);
    const offsetOf = (line: number) => lines.slice(0, line).reduce((bytes, text) => bytes + Buffer.byteLength(text) + 1, 0);
    /** The segment with zeros from line `line` to 10 bytes into the next: a block that never reached the disk. */
    const zeroed = (line: number) => {
      const copy = Buffer.from(original);
      copy.fill(0, offsetOf(line), offsetOf(line + 1) + 10);
      return copy;
    };

    // The line before the last batch belongs to a batch whose fsync returned: refused, the file untouched.
    writeFileSync(segment, zeroed(first - 1));
    const refused = hub.refusedStart();
    expect(refused.status).not.toBe(0);
    expect(refused.output).toMatch(/is damaged at byte \d+ \(line \d+\): the record fails its checksum\. The records after record \d+ were acknowledged/);
    expect(readFileSync(segment)).toEqual(zeroed(first - 1));

    // Inside the last batch, with whole lines of it after the damage: dropped from the damage on, with a warning.
    writeFileSync(segment, zeroed(first + 1));
    const restarted = await hub.start();
    // Its zeros joined two lines into one: the lines after the record kept are one fewer than the records.
    expect(restarted.output()).toMatch(new RegExp(`dropped records ${lineJson(lines[first + 1]!)[0]} on \\(${last - 1} lines of the last batch written, which began at record ${lineJson(lines[first]!)[0]}\\), damaged inside`));
    expect(readFileSync(segment)).toEqual(original.subarray(0, offsetOf(first + 1)));
    const check = await connectControl({ url: hub.url, token: TOKENS.admin });
    const after = await check.workflow('batches').get();
    // The state is as of the batch's first record, the last one kept.
    expect(JSON.stringify(lineJson(lines[first]!))).toContain(`${after.stages.loading!.progress}`);
    check.close();
    expect(await hub.stop()).toBe(0);
  }, 120_000);
});
