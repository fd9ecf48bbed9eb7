import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { summarize } from '../server/domain/workflows/summary.ts';
import { FileArchive } from '../server/store/archive-files.ts';
import { tempDir } from './helpers/hub.ts';

/** A minimal ended workflow document. */
function workflow(id: string, createdAt: number): Workflow {
  return {
    id,
    userQuery: `query ${id}`,
    outputFolder: `/tmp/${id}`,
    config: { enableAutoDocumentation: false, documentationInterval: 300, maxConcurrentAgents: null, enableDataValidation: true },
    status: 'completed',
    failureReason: null,
    createdAt,
    updatedAt: createdAt + 10,
    startedAt: createdAt + 1,
    endedAt: createdAt + 10,
    progress: 100,
    stages: {},
    steps: {},
    objectives: {},
    kpis: {},
    workOrders: {},
    workOrderCounts: { pending: 0, queued: 0, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
  } as unknown as Workflow;
}

/** The archive of `dir`, once its index is read. */
async function opened(dir: string, onWarning: (message: string) => void = () => undefined): Promise<FileArchive> {
  const archive = await FileArchive.open(dir, onWarning);
  await archive.ready();
  return archive;
}

async function filled(dir: string, ids: string[]) {
  const archive = await opened(dir);
  for (const [index, id] of ids.entries()) {
    const document = workflow(id, 1000 - index);
    await archive.put({ v: index + 1, archivedAt: 5000, workflow: document }, summarize(document, index + 1, 5000));
  }
  await archive.close();
}

describe('the file archive', () => {
  it('reads back what it wrote after a restart, lists headers by creation, and forgets deleted workflows and their files', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a', 'wf-b', 'wf-c']);
    const archive = await FileArchive.open(dir, () => undefined);
    // Before its index is read, the archive knows a workflow by its file.
    expect([archive.has('wf-b'), archive.has('wf-z')]).toEqual([true, false]);
    await archive.ready();
    expect(archive.headers().map((h) => h.id)).toEqual(['wf-c', 'wf-b', 'wf-a']);
    expect(await archive.read('wf-b')).toEqual({ v: 2, archivedAt: 5000, workflow: workflow('wf-b', 999) });
    expect(await archive.readSummary('wf-b')).toEqual(summarize(workflow('wf-b', 999), 2, 5000));
    await archive.remove(['wf-b', 'wf-unknown']);
    expect(existsSync(join(dir, 'archive', 'wf-b.json'))).toBe(false);
    await archive.close();
    const again = await opened(dir);
    expect(again.has('wf-b')).toBe(false);
    expect(again.headers().map((h) => h.id)).toEqual(['wf-c', 'wf-a']);
    expect(await again.read('wf-b')).toBeUndefined();
    await again.close();
  });

  it('drops an index line cut short by a crash, and rebuilds a damaged index from the files with a warning', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a', 'wf-b']);
    const index = join(dir, 'archive', 'index.jsonl');
    appendFileSync(index, '{"put":{"id":"wf-torn"');
    const warnings: string[] = [];
    const torn = await opened(dir, (message) => warnings.push(message));
    expect(torn.headers().map((h) => h.id)).toEqual(['wf-b', 'wf-a']);
    expect(warnings).toEqual([]);
    await torn.close();
    expect(readFileSync(index, 'utf8')).not.toContain('wf-torn');

    writeFileSync(index, readFileSync(index, 'utf8').replace('"put"', '"pu#'));
    const rebuilt = await opened(dir, (message) => warnings.push(message));
    expect(warnings).toEqual([`archive index ${index} is damaged; rebuilt it from the archived files`]);
    expect(rebuilt.headers().map((h) => h.id)).toEqual(['wf-b', 'wf-a']);
    expect((await rebuilt.read('wf-a'))?.workflow).toEqual(workflow('wf-a', 1000));
    await rebuilt.close();
  });

  it('refuses to return an archived workflow or summary whose file was altered, naming it', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a', 'wf-b']);
    const file = (id: string) => join(dir, 'archive', `${id}.json`);
    writeFileSync(file('wf-a'), readFileSync(file('wf-a'), 'utf8').replace('/tmp/wf-a', '/tmp/wf-X'));
    // The summary is the second line; the header (first line) holds the same query text.
    const lines = readFileSync(file('wf-b'), 'utf8').split('\n');
    writeFileSync(file('wf-b'), [lines[0], lines[1]!.replace('query wf-b', 'query wf-X'), lines[2]].join('\n'));
    const archive = await opened(dir);
    await expect(archive.read('wf-a')).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(`${file('wf-a')} is damaged`) });
    expect((await archive.readSummary('wf-a'))?.userQuery).toBe('query wf-a');
    await expect(archive.readSummary('wf-b')).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(`${file('wf-b')} is damaged`) });
    await archive.close();
  });
});
