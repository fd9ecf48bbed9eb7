import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { control, startHub, tempDir, TOKENS } from '../helpers/hub.ts';
import { untilTrue } from '../helpers/wait.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/archive-then-crash.ts', import.meta.url));

describe('a crash between the archive write and the eviction', () => {
  it('loses nothing: the workflow comes back from the journal, is archived again and answers the same', async () => {
    const dataDir = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dataDir, TOKENS.admin], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code, signal] = await once(child, 'exit');
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    const workflowId = /ID (\S+)/.exec(output)![1]!;
    // The archive holds it, and the journal still does too: the eviction was never written.
    expect(existsSync(join(dataDir, 'archive', `${workflowId}.json`))).toBe(true);
    expect(readFileSync(join(dataDir, 'archive', 'index.jsonl'), 'utf8')).toContain(workflowId);

    const clock = { now: Date.now() };
    const hub = await startHub({ dataDir, keepFinishedMs: 60_000, sweepIntervalMs: 10 }, { clock: () => clock.now });
    expect(hub.state.workflows.get(workflowId)?.status).toBe('cancelled');
    const client = await control(hub);
    const before = await client.connection.request('workflow.get', { workflowId });
    expect(before.workflow!.workOrders.only?.state).toBe('cancelled');

    clock.now += 60_001;
    await untilTrue(() => !hub.state.workflows.has(workflowId), 'the workflow archived again');
    expect(await client.connection.request('workflow.get', { workflowId })).toEqual(before);
    expect((await client.listWorkflows()).items.map((w) => w.id)).toEqual([workflowId]);
  });
});
