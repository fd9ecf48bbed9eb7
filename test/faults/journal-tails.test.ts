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
