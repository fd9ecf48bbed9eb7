import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { rawGet } from './helpers/http.ts';
import { untilTrue } from './helpers/wait.ts';

/** A data directory a hub of version d804574 (the first to archive) wrote and stopped cleanly: two archived workflows, one running. */
const ARCHIVE_FORMAT_0 = fileURLToPath(new URL('./fixtures/archive-format-0', import.meta.url));

/** A copy of a fixture data directory, removed when the test ends. */
function copyOf(fixture: string): string {
  const dir = tempDir();
  cpSync(fixture, dir, { recursive: true });
  return dir;
}

describe('upgrading a data directory', () => {
  it('keeps the workflows the first archiving version archived (a header and the document, no summary): listed, read, summarised and reported', async () => {
    const dataDir = copyOf(ARCHIVE_FORMAT_0);
    const hub = await startHub({ dataDir, keepFinishedMs: 60_000 });
    const client = await control(hub);
    const listed = (await client.listWorkflows()).items.map((h) => [h.userQuery, h.status]);
    expect(listed).toEqual([
      ['archived done', 'completed'],
      ['archived cancelled', 'cancelled'],
      ['still running', 'in_progress'],
    ]);
    const done = client.workflow('wf_bPInj3ikfQId');
    const workflow = await done.get();
    expect(workflow.workOrders['load-1']).toMatchObject({ state: 'completed', result: { rows: 12 } });
    expect(Object.keys(workflow.data)).toEqual(['raw']);
    const summary = await done.summary();
    expect(summary).toMatchObject({ status: 'completed', progress: 100, kpis: { total: 1, met: 1 } });
    const report = await rawGet(hub.url, '/api/workflows/wf_bPInj3ikfQId/report.md', TOKENS.admin);
    expect(report.status).toBe(200);
    expect(report.body).toContain('archived done');
    expect(await client.workflow('wf_AtnQFeKgx88q').summary()).toMatchObject({ status: 'cancelled' });
    // Nothing was set aside as damaged.
    expect(readdirSync(join(dataDir, 'archive')).filter((name) => name.endsWith('.damaged'))).toEqual([]);
  });

  it('reads workflows written before `paused` was kept as not paused, and pauses and resumes them', async () => {
    const hub = await startHub({ dataDir: copyOf(ARCHIVE_FORMAT_0), keepFinishedMs: 60_000 });
    const client = await control(hub);
    const running = (await client.listWorkflows({ status: 'in_progress' })).items[0]!;
    expect(hub.state.workflows.get(running.id)).not.toHaveProperty('paused');
    expect(running.paused).toBeNull();
    const wf = client.workflow(running.id);
    expect((await wf.summary()).paused).toBeNull();
    expect((await client.workflow('wf_bPInj3ikfQId').summary()).paused).toBeNull();
    expect((await client.listWorkflows({ status: 'completed' })).items[0]!.paused).toBeNull();
    expect((await wf.resume()).paused).toBeNull();
    expect((await wf.pause('upgraded')).paused).toMatchObject({ reason: 'upgraded' });
    expect((await wf.resume()).paused).toBeNull();
  });

  it('answers a summary archived before `paused` was kept as not paused', async () => {
    const dataDir = tempDir();
    const first = await startHub({ dataDir, keepFinishedMs: 0, sweepIntervalMs: 20 });
    const wf = await (await control(first)).createWorkflow({ userQuery: 'archived before pause' });
    await wf.cancel('done with it');
    await untilTrue(() => !first.state.workflows.has(wf.id), 'the workflow archived');
    await first.close();
    // Its summary line as a hub before pause wrote it: no `paused`, its checksum in its header and the index to match.
    const file = join(dataDir, 'archive', `${wf.id}.json`);
    const index = join(dataDir, 'archive', 'index.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    const { paused, ...older } = JSON.parse(lines[1]!) as Record<string, unknown>;
    expect(paused).toBeNull();
    const hashOf = (text: string) => createHash('sha256').update(text).digest('hex');
    const [was, now] = [hashOf(lines[1]!), hashOf((lines[1] = JSON.stringify(older)))];
    writeFileSync(file, lines.join('\n').replace(was, now));
    writeFileSync(index, readFileSync(index, 'utf8').replaceAll(was, now));

    const hub = await startHub({ dataDir });
    const summary = await (await control(hub)).workflow(wf.id).summary();
    expect(summary).toMatchObject({ id: wf.id, status: 'cancelled', paused: null });
  });

  it('takes those workflows back in from their files when the archive index is lost', async () => {
    const dataDir = copyOf(ARCHIVE_FORMAT_0);
    unlinkSync(join(dataDir, 'archive', 'index.jsonl'));
    const hub = await startHub({ dataDir, keepFinishedMs: 60_000 });
    const client = await control(hub);
    expect((await client.listWorkflows({ status: 'cancelled' })).items.map((h) => h.id)).toEqual(['wf_AtnQFeKgx88q']);
    expect(await client.workflow('wf_bPInj3ikfQId').summary()).toMatchObject({ status: 'completed', kpis: { met: 1 } });
    expect(readdirSync(join(dataDir, 'archive')).filter((name) => name.endsWith('.damaged'))).toEqual([]);
  });
});
