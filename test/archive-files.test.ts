import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open, type FileHandle } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { summarize } from '../server/domain/workflows/summary.ts';
import { headerOf } from '../server/store/archive.ts';
import { FileArchive } from '../server/store/archive-files.ts';
import { bigWorkflow, toArchive, workflow } from './helpers/archived-workflows.ts';
import { tempDir } from './helpers/hub.ts';
import { diskFull } from './helpers/wrapped-store.ts';

/** The archive of `dir`, once its index is read. */
async function opened(dir: string, onWarning: (message: string) => void = () => undefined): Promise<FileArchive> {
  const archive = await FileArchive.open(dir, onWarning);
  await archive.ready();
  return archive;
}

/** Writes a file and its index line as the archive did before format 2: header, summary, then the document's JSON on one line. */
function writeFirstFormat(dir: string, document: Workflow, v: number, archivedAt: number): void {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
  const text = JSON.stringify(document);
  const summary = JSON.stringify(summarize(document, v, archivedAt));
  const header = { ...headerOf(document, v, archivedAt), sha256: sha256(text), summarySha256: sha256(summary) };
  mkdirSync(join(dir, 'archive'), { recursive: true });
  writeFileSync(join(dir, 'archive', `${document.id}.json`), `${JSON.stringify(header)}\n${summary}\n${text}`);
  appendFileSync(join(dir, 'archive', 'index.jsonl'), `${JSON.stringify({ put: header })}\n`);
}

async function filled(dir: string, ids: string[]) {
  const archive = await opened(dir);
  for (const [index, id] of ids.entries()) {
    const document = workflow(id, 1000 - index);
    await archive.put(toArchive(document, index + 1, 5000), summarize(document, index + 1, 5000));
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

  it('rebuilds the index when a line parses but is not an index line, and sets aside a file whose header is not one', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a', 'wf-b']);
    const index = join(dir, 'archive', 'index.jsonl');
    const good = readFileSync(index, 'utf8');
    const stray = join(dir, 'archive', 'wf-stray.json');
    writeFileSync(stray, '{"id":"wf-stray"}\nsummary\n');
    for (const line of ['null', '7', '{"put":null}', '{"put":{"id":"wf-zz"}}', '{"put":{"id":"../wf-a","v":1}}', '{"remove":[1]}', '{"other":true}']) {
      writeFileSync(index, `${good}${line}\n`);
      const warnings: string[] = [];
      const archive = await opened(dir, (message) => warnings.push(message));
      expect(warnings, line).toContain(`archive index ${index} is damaged; rebuilt it from the archived files`);
      expect(archive.headers().map((h) => h.id)).toEqual(['wf-b', 'wf-a']);
      expect((await archive.read('wf-a'))?.workflow).toEqual(workflow('wf-a', 1000));
      await archive.close();
    }
    // The stray file was moved aside at the first rebuild, not deleted with the files the index does not name.
    expect(existsSync(stray)).toBe(false);
    expect(readFileSync(`${stray}.damaged`, 'utf8')).toBe('{"id":"wf-stray"}\nsummary\n');
  });

  it('archives and deletes nothing while its index cannot be read, and reads it again at the next call', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a']);
    const index = join(dir, 'archive', 'index.jsonl');
    writeFileSync(index, `${readFileSync(index, 'utf8')}null\n`);
    // The rebuilt index cannot be written: its temporary file's name is taken by a folder.
    const blocker = join(dir, 'archive', '.index.jsonl.tmp');
    mkdirSync(blocker);
    const archive = await FileArchive.open(dir, () => undefined);
    await expect(archive.ready()).rejects.toThrow();
    const document = workflow('wf-new', 900);
    await expect(archive.put(toArchive(document, 3, 5000), summarize(document, 3, 5000))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(archive.remove(['wf-a'])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(existsSync(join(dir, 'archive', 'wf-new.json'))).toBe(false);
    expect(existsSync(join(dir, 'archive', 'wf-a.json'))).toBe(true);
    rmdirSync(blocker);
    await archive.ready();
    await archive.put(toArchive(document, 3, 5000), summarize(document, 3, 5000));
    expect(archive.headers().map((h) => h.id)).toEqual(['wf-new', 'wf-a']);
    expect((await archive.read('wf-new'))?.workflow).toEqual(document);
    await archive.close();
  });

  it('refuses to return an archived workflow or summary whose file was altered, naming it', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a', 'wf-b']);
    const file = (id: string) => join(dir, 'archive', `${id}.json`);
    writeFileSync(file('wf-a'), readFileSync(file('wf-a'), 'utf8').replace('/tmp/wf-a', '/tmp/wf-X'));
    // The summary is the second line; the header (first line) holds the same query text.
    const lines = readFileSync(file('wf-b'), 'utf8').split('\n');
    writeFileSync(file('wf-b'), lines.map((line, at) => (at === 1 ? line.replace('query wf-b', 'query wf-X') : line)).join('\n'));
    const archive = await opened(dir);
    await expect(archive.read('wf-a')).rejects.toMatchObject({ code: 'INTERNAL', detail: expect.stringContaining(`${file('wf-a')} is damaged`) });
    expect((await archive.readSummary('wf-a'))?.userQuery).toBe('query wf-a');
    await expect(archive.readSummary('wf-b')).rejects.toMatchObject({ code: 'INTERNAL', detail: expect.stringContaining(`${file('wf-b')} is damaged`) });
    await archive.close();
  });
  it('reads back a big workflow equal to what was archived, its keys in the same order', async () => {
    const dir = tempDir();
    const archive = await opened(dir);
    const document = bigWorkflow('wf-big', 6000);
    const expected = JSON.stringify(document);
    expect(expected.length).toBeGreaterThan(1_000_000);
    await archive.put(toArchive(document, 9, 5000), summarize(document, 9, 5000));
    const read = await archive.read('wf-big');
    expect(read).toEqual({ v: 9, archivedAt: 5000, workflow: document });
    // Byte for byte: a report rendered from it is the same as one rendered from memory.
    expect(JSON.stringify(read!.workflow)).toBe(expected);
    await archive.close();
  });

  it('still reads workflows archived in the first format, the document on one line, also once its index is rebuilt', async () => {
    const dir = tempDir();
    const old = bigWorkflow('wf-old', 200);
    writeFirstFormat(dir, old, 4, 3000);
    await filled(dir, ['wf-new']);
    const archive = await opened(dir);
    // Both created at 1000: listed by id.
    expect(archive.headers().map((h) => h.id)).toEqual(['wf-new', 'wf-old']);
    expect(await archive.read('wf-old')).toEqual({ v: 4, archivedAt: 3000, workflow: old });
    expect(await archive.readSummary('wf-old')).toEqual(summarize(old, 4, 3000));
    await archive.close();

    const index = join(dir, 'archive', 'index.jsonl');
    writeFileSync(index, readFileSync(index, 'utf8').replace('"put"', '"pu#'));
    const rebuilt = await opened(dir);
    await rebuilt.close();
    // The index written anew keeps each file's format: read once more from it.
    const again = await opened(dir);
    expect(JSON.stringify((await again.read('wf-old'))?.workflow)).toBe(JSON.stringify(old));
    expect((await again.read('wf-new'))?.workflow).toEqual(workflow('wf-new', 1000));
    await again.close();
  });

  it('refuses a workflow with a damaged item line, or one cut short, naming its file', async () => {
    const dir = tempDir();
    const archive = await opened(dir);
    for (const id of ['wf-a', 'wf-b', 'wf-c']) {
      const document = bigWorkflow(id, 50);
      await archive.put(toArchive(document, 1, 5000), summarize(document, 1, 5000));
    }
    const file = (id: string) => join(dir, 'archive', `${id}.json`);
    const damage = (id: string, change: (line: string) => string) => {
      const lines = readFileSync(file(id), 'utf8').split('\n');
      const at = lines.findIndex((line) => line.startsWith('["workOrders","o20"'));
      lines[at] = change(lines[at]!);
      writeFileSync(file(id), lines.join('\n'));
    };
    // A line that no longer parses; one that parses but says something else; a file that ends within a line.
    damage('wf-a', (line) => line.slice(0, -5));
    damage('wf-b', (line) => line.replace('"n":20', '"n":21'));
    writeFileSync(file('wf-c'), readFileSync(file('wf-c'), 'utf8').slice(0, -3));
    for (const id of ['wf-a', 'wf-b', 'wf-c']) {
      await expect(archive.read(id)).rejects.toMatchObject({ code: 'INTERNAL', detail: expect.stringContaining(`${file(id)} is damaged`) });
      // The summary, a part of its own, is still read.
      expect((await archive.readSummary(id))?.userQuery).toBe(`query ${id}`);
    }
    await archive.close();
  });

  it('refuses a put whose index line a full disk cut short, leaving the index as it was', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a']);
    const archive = await opened(dir);
    // A full disk takes part of the index line, then refuses the rest (the archive's own files are written whole).
    const probe = await open(join(dir, 'archive', 'index.jsonl'));
    const proto = Object.getPrototypeOf(probe) as Record<'write', (this: FileHandle, ...args: unknown[]) => Promise<unknown>>;
    await probe.close();
    const write = proto.write;
    let full = false;
    const spy = vi.spyOn(proto, 'write').mockImplementation(async function (this: FileHandle, ...args: unknown[]) {
      if (full) throw diskFull();
      const [data, offset, length] = args as [string | Buffer, number, number];
      const bytes = typeof data === 'string' ? Buffer.from(data) : data.subarray(offset, offset + length);
      if (!bytes.toString().startsWith('{"put":')) return write.call(this, ...args);
      full = true;
      await write.call(this, bytes.subarray(0, 20));
      return { bytesWritten: 20, buffer: data };
    });
    const document = workflow('wf-b', 900);
    try {
      await expect(archive.put(toArchive(document, 2, 5000), summarize(document, 2, 5000))).rejects.toThrow();
    } finally {
      spy.mockRestore();
    }
    expect(archive.has('wf-b')).toBe(false);
    await archive.put(toArchive(document, 2, 5000), summarize(document, 2, 5000));
    await archive.close();
    const warnings: string[] = [];
    const again = await opened(dir, (message) => warnings.push(message));
    expect(warnings).toEqual([]);
    expect(again.headers().map((h) => h.id)).toEqual(['wf-b', 'wf-a']);
    expect((await again.read('wf-b'))?.workflow).toEqual(document);
    await again.close();
  });

  it('deletes, says so, and goes on archiving when the index could not be written anew once most of its lines were deletions', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a']);
    const index = join(dir, 'archive', 'index.jsonl');
    // As many deletions as keep the index from being written anew at start-up, but not once wf-a is deleted too.
    appendFileSync(index, Array.from({ length: 1001 }, (_, i) => `${JSON.stringify({ remove: [`wf-gone-${i}`] })}\n`).join(''));
    const warnings: string[] = [];
    const archive = await opened(dir, (message) => warnings.push(message));
    const blocker = join(dir, 'archive', '.index.jsonl.tmp');
    mkdirSync(blocker);
    // The deletion is on disk once its line is: writing the index anew is housekeeping, and its failure only a warning.
    await archive.remove(['wf-a']);
    expect(archive.has('wf-a')).toBe(false);
    expect(warnings).toEqual([expect.stringContaining(`archive index ${index} could not be written anew`)]);
    rmdirSync(blocker);
    const document = workflow('wf-new', 900);
    await archive.put(toArchive(document, 3, 5000), summarize(document, 3, 5000));
    await archive.close();
    const again = await opened(dir);
    expect(again.headers().map((h) => h.id)).toEqual(['wf-new']);
    expect((await again.read('wf-new'))?.workflow).toEqual(document);
    await again.close();
  });

  it('takes in, with a warning, the archived files an index deleted, cut short or restored from an older copy no longer names', async () => {
    const index = (dir: string) => join(dir, 'archive', 'index.jsonl');
    const lines = (dir: string) => readFileSync(index(dir), 'utf8').split('\n').filter(Boolean);
    const cases: Array<[string, (dir: string) => void]> = [
      ['deleted', (dir) => writeFileSync(index(dir), '')],
      ['cut at a line', (dir) => writeFileSync(index(dir), `${lines(dir)[0]}\n`)],
      ['cut inside a line', (dir) => writeFileSync(index(dir), readFileSync(index(dir), 'utf8').slice(0, -20))],
    ];
    for (const [what, damage] of cases) {
      const dir = tempDir();
      await filled(dir, ['wf-a', 'wf-b']);
      damage(dir);
      const warnings: string[] = [];
      const archive = await opened(dir, (message) => warnings.push(message));
      expect(archive.headers().map((h) => h.id), what).toEqual(['wf-b', 'wf-a']);
      expect((await archive.read('wf-b'))?.workflow, what).toEqual(workflow('wf-b', 999));
      expect(warnings.join('\n'), what).toContain(`archived file ${join(dir, 'archive', 'wf-b.json')} is not in the archive index`);
      await archive.close();
      // Named again on disk: the next start has nothing to say.
      const again = await opened(dir, (message) => warnings.push(`again: ${message}`));
      expect(again.headers().map((h) => h.id), what).toEqual(['wf-b', 'wf-a']);
      expect(warnings.filter((w) => w.startsWith('again:')), what).toEqual([]);
      await again.close();
    }
  });

  it('deletes the file of a deletion the index records, and never one it does not name, also when it writes the index anew', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a', 'wf-b', 'wf-c']);
    const index = join(dir, 'archive', 'index.jsonl');
    const [first, second] = readFileSync(index, 'utf8').split('\n');
    // wf-b's deletion was recorded but its file stayed (a crash before the unlink); wf-c's line is lost;
    // and enough deletions of others make the load write the index anew.
    writeFileSync(index, `${first}\n${second}\n${JSON.stringify({ remove: ['wf-b'] })}\n`);
    appendFileSync(index, Array.from({ length: 1100 }, (_, i) => `${JSON.stringify({ remove: [`wf-gone-${i}`] })}\n`).join(''));
    const warnings: string[] = [];
    const archive = await opened(dir, (message) => warnings.push(message));
    expect(archive.headers().map((h) => h.id)).toEqual(['wf-c', 'wf-a']);
    expect(existsSync(join(dir, 'archive', 'wf-b.json'))).toBe(false);
    expect((await archive.read('wf-c'))?.workflow).toEqual(workflow('wf-c', 998));
    expect(warnings).toEqual([`archived file ${join(dir, 'archive', 'wf-c.json')} is not in the archive index ${index}; added it back`]);
    expect(readFileSync(index, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    await archive.close();
    // A file put beside the archive while it runs is not deleted when a prune writes the index anew
    // (the load could not: a folder where the new index goes).
    appendFileSync(index, Array.from({ length: 1100 }, (_, i) => `${JSON.stringify({ remove: [`wf-more-${i}`] })}\n`).join(''));
    const blocker = join(dir, 'archive', '.index.jsonl.tmp');
    mkdirSync(blocker);
    const running = await opened(dir);
    rmdirSync(blocker);
    const elsewhere = tempDir();
    await filled(elsewhere, ['wf-restored']);
    const restored = join(dir, 'archive', 'wf-restored.json');
    writeFileSync(restored, readFileSync(join(elsewhere, 'archive', 'wf-restored.json')));
    await running.remove(['wf-a']);
    expect(readFileSync(index, 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    expect([existsSync(join(dir, 'archive', 'wf-a.json')), existsSync(restored)]).toEqual([false, true]);
    await running.close();
  });

  it('serves an index long with deletions that cannot be written anew at start-up, with a warning', async () => {
    const dir = tempDir();
    await filled(dir, ['wf-a']);
    const index = join(dir, 'archive', 'index.jsonl');
    appendFileSync(index, Array.from({ length: 1100 }, (_, i) => `${JSON.stringify({ remove: [`wf-gone-${i}`] })}\n`).join(''));
    mkdirSync(join(dir, 'archive', '.index.jsonl.tmp'));
    const warnings: string[] = [];
    const archive = await opened(dir, (message) => warnings.push(message));
    expect(warnings).toEqual([expect.stringContaining(`archive index ${index} could not be written anew`)]);
    expect((await archive.read('wf-a'))?.workflow).toEqual(workflow('wf-a', 1000));
    await archive.close();
  });
});
