import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, truncateSync } from 'node:fs';
import { open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { HubError } from '../../shared/errors.ts';
import type { WorkflowSummary } from '../../shared/schemas/summary.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { archivedHeader, damaged, HeaderIndex, unreadable, type ArchivedHeader, type ArchiveTally, type ArchivedWorkflow, type WorkflowArchive, type WorkflowToArchive } from './archive.ts';
import { DamagedPart } from './archive-lines.ts';
import { SharedLoad } from './shared-load.ts';
import { readArchivedDocument, readLines, writeArchivedFile } from './archived-file.ts';
import { syncedWrite } from './synced-write.ts';

/** The folder of the data directory that holds the archive. */
export const ARCHIVE_DIR = 'archive';
/** The archive's index of headers, made at a hub's first start (after its manifest). */
export const ARCHIVE_INDEX_FILE = 'index.jsonl';
/** Index lines read between two turns of the event loop while the archive loads (about a millisecond's worth). */
const LOAD_SLICE = 500;

/**
 * A header as files hold it: with the SHA-256 of the document's and the summary's text, checked
 * when they are read back, and the file's format: 2 for a document in lines (archive-lines.ts),
 * absent for the first format, the document's JSON on one line. Files of the first archiving
 * hubs (format 0) hold no summary: the header, then the document's JSON; their headers have no
 * `summarySha256`.
 */
interface FiledHeader extends ArchivedHeader {
  format?: 2;
  sha256: string;
  summarySha256?: string;
}

/** The checksums of one archived workflow's parts (no summary in format 0), and the format of its file. */
interface Sums {
  document: string;
  summary: string | undefined;
  format: 0 | 1 | 2;
}

/** One line of the index: a workflow archived, or workflows deleted. */
type IndexLine = { put: FiledHeader } | { remove: string[] };

const fileOf = (id: string) => `${id}.json`;

/** The header a line of the index or of a file holds (an archived header with its checksums), or undefined when it is not one. */
function filedHeader(value: unknown): FiledHeader | undefined {
  const header = archivedHeader(value) as Partial<FiledHeader> | undefined;
  const summary = header?.summarySha256;
  return typeof header?.sha256 === 'string' && (typeof summary === 'string' || summary === undefined) ? (header as FiledHeader) : undefined;
}

/** The index line `value` is, or undefined when it is not one. */
function indexLine(value: unknown): IndexLine | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if ('put' in value) return filedHeader(value.put) ? (value as IndexLine) : undefined;
  if ('remove' in value && Array.isArray(value.remove) && value.remove.every((id) => typeof id === 'string')) return value as IndexLine;
  return undefined;
}
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Reads the document of a file in the first format (header, summary, then the document's JSON on
 * one line), as it was written before format 2, or in format 0 (no summary line). Its one hash and
 * one parse hold the event loop for as long as the document is big (about half a second for 60 MB):
 * acceptable for the files left from then, which are read once each and cached, while every file
 * written now is read in slices.
 */
async function readFirstFormat(path: string, format: 0 | 1): Promise<{ workflow: Workflow; sha256: string }> {
  const text = await readFile(path, 'utf8');
  const afterHeader = text.indexOf('\n') + 1;
  const start = format === 0 || afterHeader === 0 ? afterHeader : text.indexOf('\n', afterHeader) + 1;
  const document = start === 0 ? '' : text.slice(start);
  const sum = sha256(document);
  try {
    return { workflow: JSON.parse(document) as Workflow, sha256: sum };
  } catch {
    throw new DamagedPart('its document does not parse');
  }
}

/**
 * The embedded store's archive, in `<dataDir>/archive/`: one file per workflow (a header line,
 * the summary, then the document, see archived-file.ts), written atomically and flushed before the
 * index names it, and written and read a slice at a time so that a big one never holds the hub; and
 * `index.jsonl`, an append-only list of what was archived and deleted, read at start-up instead
 * of the files. The index is rewritten once most of its lines are deletions.
 */
export class FileArchive implements WorkflowArchive {
  private readonly index = new HeaderIndex();
  private readonly sums = new Map<string, Sums>();
  private indexLines = 0;
  private loaded = false;
  private readonly loading = new SharedLoad();
  private onWarning: (message: string) => void = () => undefined;
  private handle: FileHandle | undefined;
  /** Workflows the index records as deleted (since it was last written anew): only their files are deleted unasked. */
  private readonly removed = new Set<string>();
  /** Index writes in order: one line at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly dir: string) {}

  /**
   * Opens (or creates) the archive under `dataDir`. Its index is read later, by `ready()`, so
   * that start-up does not grow with the archive. A damaged index is rebuilt from the files, with
   * a warning.
   */
  static async open(dataDir: string, onWarning: (message: string) => void): Promise<FileArchive> {
    const archive = new FileArchive(join(dataDir, ARCHIVE_DIR));
    mkdirSync(archive.dir, { recursive: true });
    archive.handle = await open(join(archive.dir, ARCHIVE_INDEX_FILE), 'a');
    archive.onWarning = onWarning;
    return archive;
  }

  /**
   * Reads the index, at the first call (the hub asks once it listens, and anything that needs the
   * index asks first); resolves once it is read. Until then `size`, `header` and `headers` are incomplete.
   */
  ready(): Promise<void> {
    // First in the queue: writes and deletions wait until the index is read. A failure is the
    // client's UNAVAILABLE (retry later), not an unexplained INTERNAL.
    return this.loading.run(() =>
      this.serial(() => this.load()).catch((error: Error) => {
        throw error instanceof HubError ? error : new HubError('UNAVAILABLE', `the archive index in ${this.dir} cannot be read (${error.message}); nothing was archived or deleted`);
      }),
    );
  }

  get size(): number {
    return this.index.size;
  }
  get tally(): ArchiveTally {
    return this.index.tally;
  }
  /** Whether the workflow is archived; before the index is read, whether its file is there. */
  has(id: string): boolean {
    return this.loaded ? this.index.has(id) : existsSync(join(this.dir, fileOf(id)));
  }
  header(id: string): ArchivedHeader | undefined {
    return this.index.get(id);
  }
  headers(): readonly ArchivedHeader[] {
    return this.index.all();
  }

  put(entry: WorkflowToArchive, summary: WorkflowSummary): Promise<void> {
    const digest = JSON.stringify(summary);
    const summarySha256 = sha256(digest);
    const filed = (documentSha256: string): FiledHeader => ({ ...entry.header, format: 2, sha256: documentSha256, summarySha256 });
    void this.ready();
    return this.serial(async () => {
      this.requireLoaded();
      const documentSha256 = await writeArchivedFile(this.dir, fileOf(entry.header.id), (sum) => JSON.stringify(filed(sum)), digest, entry.lines);
      const header = filed(documentSha256);
      await this.appendIndex({ put: header });
      this.remember(header);
      this.removed.delete(header.id);
    });
  }

  async read(id: string): Promise<ArchivedWorkflow | undefined> {
    await this.ready();
    const header = this.index.get(id);
    const sums = this.sums.get(id);
    if (!header || !sums) return undefined;
    const path = join(this.dir, fileOf(id));
    const { workflow, sha256: sum } = await this.readPart(id, path, () => (sums.format === 2 ? readArchivedDocument(path) : readFirstFormat(path, sums.format)));
    if (sum !== sums.document) throw damaged(id, path, 'its checksum does not match the archive index');
    return { v: header.v, archivedAt: header.archivedAt, workflow };
  }

  async readSummary(id: string): Promise<WorkflowSummary | undefined> {
    await this.ready();
    // Format 0 kept no summary: the caller computes it from the document.
    if (!this.index.has(id) || this.sums.get(id)?.format === 0) return undefined;
    const path = join(this.dir, fileOf(id));
    const lines = await this.readPart(id, path, () => readLines(path, 2));
    const summary = lines?.[1] ?? '';
    if (sha256(summary) !== this.sums.get(id)?.summary) throw damaged(id, path, 'its summary’s checksum does not match the archive index');
    return JSON.parse(summary) as WorkflowSummary;
  }

  /** Runs a read of an archived file; a file that cannot be read, or holds what was not written, is named in the error. */
  private async readPart<T>(id: string, path: string, read: () => T | Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof DamagedPart) throw damaged(id, path, error.message);
      throw unreadable(id, path, error as Error);
    }
  }

  remove(ids: readonly string[], unlisted?: () => void): Promise<void> {
    void this.ready();
    return this.serial(async () => {
      this.requireLoaded();
      const present = ids.filter((id) => this.index.has(id));
      if (present.length === 0) return unlisted?.();
      await this.appendIndex({ remove: present });
      this.index.delete(present);
      for (const id of present) {
        this.sums.delete(id);
        this.removed.add(id);
      }
      unlisted?.();
      await Promise.all(present.map((id) => unlink(join(this.dir, fileOf(id))).catch(() => undefined)));
      // The deletion is recorded already: a failure to shorten the index is not one to delete.
      await this.shortenIndex();
    });
  }

  /** Waits for writes in progress and closes the index. */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    await this.handle?.close();
    this.handle = undefined;
  }

  /** Writes wait for the index: one written beside an index that could not be read would be lost with it. */
  private requireLoaded(): void {
    if (!this.loaded) throw new HubError('UNAVAILABLE', `the archive index in ${this.dir} could not be read; nothing was archived or deleted`);
  }

  private serial(job: () => Promise<void>): Promise<void> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private remember(header: FiledHeader): void {
    const { sha256: document, summarySha256: summary, format, ...kept } = header;
    this.index.put(kept);
    this.sums.set(header.id, { document, summary, format: format === 2 ? 2 : summary === undefined ? 0 : 1 });
  }

  /**
   * Reads the index, a slice at a time so the hub serves meanwhile; rebuilds it from the files when
   * it is damaged, and takes in each file it does not name (its lines lost, or it is missing).
   */
  private async load(): Promise<void> {
    const path = join(this.dir, ARCHIVE_INDEX_FILE);
    if (!(await this.readIndex(path))) {
      this.onWarning(`archive index ${path} is damaged; rebuilt it from the archived files`);
      await this.rebuildFromFiles();
      await this.rewriteIndex();
    } else {
      await this.adoptUnlisted();
      await this.shortenIndex();
    }
    this.loaded = true;
  }

  /**
   * Files the index does not name: one of a deletion it records is deleted (its unlink did not
   * happen); any other is an archived workflow the index lost (a line cut off, an index restored
   * from an older copy or deleted), named again from its header with a warning, or set aside.
   * A put a crash cut between the file and its line is taken in too: its workflow, still in the
   * journal, is then in both, as after a crash between the archive write and the eviction.
   */
  private async adoptUnlisted(): Promise<void> {
    // Listed off the event loop: an archive may hold a hundred thousand files.
    for (const name of await readdir(this.dir)) {
      const id = name.slice(0, -'.json'.length);
      if (!name.endsWith('.json') || this.index.has(id)) continue;
      if (this.removed.has(id)) {
        await unlink(join(this.dir, name)).catch(() => undefined);
        continue;
      }
      const header = await this.headerOfFile(name);
      if (!header) continue;
      await this.appendIndex({ put: header });
      this.remember(header);
      this.onWarning(`archived file ${join(this.dir, name)} is not in the archive index ${join(this.dir, ARCHIVE_INDEX_FILE)}; added it back`);
    }
  }

  /** Writes the index anew once most of its lines are deletions: housekeeping, whose failure is only a warning. */
  private async shortenIndex(): Promise<void> {
    if (this.indexLines <= 2 * this.index.size + 1000) return;
    await this.rewriteIndex().catch((error: Error) => this.onWarning(`archive index ${join(this.dir, ARCHIVE_INDEX_FILE)} could not be written anew (${error.message}); it keeps its lines`));
  }

  /** Reads the index; false when a line other than a torn last one does not parse. */
  private async readIndex(path: string): Promise<boolean> {
    const text = await readFile(path, 'utf8');
    let start = 0;
    while (start < text.length) {
      const end = text.indexOf('\n', start);
      if (end === -1) {
        // A line cut short by a crash: its put was never acknowledged (the workflow is still in the snapshot or journal).
        truncateSync(path, Buffer.byteLength(text.slice(0, start)));
        return true;
      }
      let line: IndexLine | undefined;
      try {
        line = indexLine(JSON.parse(text.slice(start, end)));
      } catch {
        return false;
      }
      if (!line) return false;
      if ('put' in line) {
        this.remember(line.put);
        this.removed.delete(line.put.id);
      } else {
        this.index.delete(line.remove);
        for (const id of line.remove) {
          this.sums.delete(id);
          this.removed.add(id);
        }
      }
      if (++this.indexLines % LOAD_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
      start = end + 1;
    }
    return true;
  }

  /** Lists every archived file by its header line (the rest of each file is not read); a file whose header is not one is set aside. */
  private async rebuildFromFiles(): Promise<void> {
    this.index.delete(this.index.all().map((header) => header.id));
    this.sums.clear();
    for (const name of await readdir(this.dir)) {
      // A deletion the readable part recorded stays one: its file goes with the index written anew.
      if (!name.endsWith('.json') || this.removed.has(name.slice(0, -'.json'.length))) continue;
      const header = await this.headerOfFile(name);
      if (header) this.remember(header);
    }
  }

  /** The header of archived file `name` (the rest of it is not read); a file whose header is not one is set aside, and undefined. */
  private async headerOfFile(name: string): Promise<FiledHeader | undefined> {
    const [line] = (await readLines(join(this.dir, name), 1)) ?? [];
    let header: FiledHeader | undefined;
    try {
      header = filedHeader(JSON.parse(line ?? ''));
    } catch {
      header = undefined;
    }
    if (header && fileOf(header.id) === name) return header;
    // Set aside for a person to look at, never deleted.
    await rename(join(this.dir, name), join(this.dir, `${name}.damaged`));
    this.onWarning(`archived file ${join(this.dir, name)} has no header this archive can read; moved it to ${name}.damaged`);
    return undefined;
  }

  private async appendIndex(line: IndexLine): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new Error('archive is closed');
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`);
    const { size } = await handle.stat();
    try {
      // A full disk may take part of a write and refuse the rest: a line the load would drop as torn must not be taken as written.
      for (let done = 0; done < bytes.length; ) done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
      await handle.datasync();
    } catch (error) {
      // Cut back to the last whole line, so that the next one is not appended to a fragment.
      await handle.truncate(size).catch(() => undefined);
      throw error;
    }
    this.indexLines++;
  }

  /**
   * Writes the index anew with one line per archived workflow, and deletes the files of the
   * deletions it records (one whose unlink fails again stays recorded as deleted). Any other file
   * it does not name is left for the next load to take in.
   */
  private async rewriteIndex(): Promise<void> {
    const lines = this.index.all().map((header) => {
      const sums = this.sums.get(header.id)!;
      const put: FiledHeader = { ...header, ...(sums.format === 2 ? { format: 2 } : {}), sha256: sums.document, ...(sums.summary === undefined ? {} : { summarySha256: sums.summary }) };
      return JSON.stringify({ put }) + '\n';
    });
    const leftovers = [...this.removed].filter((id) => existsSync(join(this.dir, fileOf(id))));
    if (leftovers.length > 0) lines.push(JSON.stringify({ remove: leftovers }) + '\n');
    const handle = this.handle;
    await handle?.close();
    try {
      await syncedWrite(this.dir, ARCHIVE_INDEX_FILE, lines.join(''));
    } finally {
      // Reopened even when the new index could not be written: the old one is still there to append to.
      if (handle) this.handle = await open(join(this.dir, ARCHIVE_INDEX_FILE), 'a');
    }
    this.indexLines = lines.length;
    this.removed.clear();
    for (const id of leftovers) {
      await unlink(join(this.dir, fileOf(id))).catch(() => this.removed.add(id));
    }
  }
}
