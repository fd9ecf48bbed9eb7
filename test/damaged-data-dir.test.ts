import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HubOptionsInput } from '../server/index.ts';
import { control, crashCopy, startHub, tempDir } from './helpers/hub.ts';
import { LEVEL, logRecorder } from './helpers/log-recorder.ts';

const OVERRULE = 'run `switchboard start --truncate-damaged-journal` once.';

/** Why a start on `options` was refused, or 'started'. */
const refusal = (options: HubOptionsInput) => startHub(options).then(() => 'started', (error: Error) => error.message);

/** The ids of the workflows a hub on `dataDir` serves, sorted, and the warnings it logged starting. */
async function served(dataDir: string, options: HubOptionsInput = {}): Promise<{ ids: string[]; warnings: string[] }> {
  const log = logRecorder('warn');
  const hub = await startHub({ dataDir, ...options }, { logger: log.logger });
  const ids = (await (await control(hub)).listWorkflows()).items.map((w) => w.id).sort();
  await hub.close();
  return { ids, warnings: log.entries.filter((entry) => entry.level === LEVEL.warn).map((entry) => entry.msg) };
}

/** Starts a hub on `dataDir`, acknowledges `count` new workflows and returns their ids with the still running hub. */
async function withWorkflows(dataDir: string, count: number) {
  const hub = await startHub({ dataDir });
  const client = await control(hub);
  const ids: string[] = [];
  for (let n = 0; n < count; n++) ids.push((await client.createWorkflow({ userQuery: `acknowledged ${n}` })).id);
  return { hub, ids };
}

/** A data directory as a hub killed after a clean run left it: a snapshot, and the killed run's journal after it. */
async function killedAfterSnapshot() {
  const dataDir = tempDir();
  const first = await withWorkflows(dataDir, 2);
  await first.hub.close();
  const second = await withWorkflows(dataDir, 2);
  return { dataDir: crashCopy(dataDir), ids: [...first.ids, ...second.ids].sort() };
}

const journalOf = (dir: string) => readdirSync(dir).filter((name) => name.endsWith('.journal')).sort();

describe('a damaged or incomplete data directory', () => {
  it('whose snapshot and manifest were deleted after a clean stop, nothing archived yet, is refused naming both, and starts whole once they are back', async () => {
    const dataDir = tempDir();
    const { hub, ids } = await withWorkflows(dataDir, 3);
    await hub.close();
    const kept = ['manifest.json', 'snapshot.json'].map((name) => [name, readFileSync(join(dataDir, name))] as const);
    for (const [name] of kept) unlinkSync(join(dataDir, name));
    const expected = `${join(dataDir, 'manifest.json')} and ${join(dataDir, 'snapshot.json')} are missing, yet ${join(dataDir, 'archive', 'index.jsonl')} exists (a hub makes it at its first start, after its manifest): the state of this data directory was deleted; restore them, or move the data directory aside to start empty`;
    expect(await refusal({ dataDir })).toBe(expected);
    // The flag drops damaged journal records; it does not make deleted state an empty hub.
    expect(await refusal({ dataDir, truncateDamagedJournal: true })).toBe(expected);
    for (const [name, bytes] of kept) writeFileSync(join(dataDir, name), bytes);
    expect((await served(dataDir)).ids).toEqual(ids.sort());
  });

  it('whose snapshot and manifest were deleted after a crash is refused naming both and where the journal starts, also with the flag, deleting nothing', async () => {
    const { dataDir } = await killedAfterSnapshot();
    for (const name of ['manifest.json', 'snapshot.json']) unlinkSync(join(dataDir, name));
    const journal = journalOf(dataDir).map((name) => readFileSync(join(dataDir, name)));
    const expected = new RegExp(
      `^${join(dataDir, 'manifest.json')} and ${join(dataDir, 'snapshot.json')} are missing, while the journal starts at record \\d+ \\(${join(dataDir, journalOf(dataDir)[0]!)}\\): it continues from a snapshot that is gone; restore them from a backup, or move the data directory aside to start empty$`,
    );
    expect(await refusal({ dataDir })).toMatch(expected);
    expect(await refusal({ dataDir, truncateDamagedJournal: true })).toMatch(expected);
    expect(journalOf(dataDir).map((name) => readFileSync(join(dataDir, name)))).toEqual(journal);
  });

  it('whose manifest is empty or deleted is refused with the way out, which starts with every acknowledged workflow', async () => {
    const afterSnapshot = await killedAfterSnapshot();
    writeFileSync(join(afterSnapshot.dataDir, 'manifest.json'), '');
    // Killed before its first snapshot: the journal alone, from record 1.
    const journalOnly = tempDir();
    const { ids } = await withWorkflows(journalOnly, 2);
    const copy = crashCopy(journalOnly);
    unlinkSync(join(copy, 'manifest.json'));
    for (const [dataDir, acknowledged, problem] of [
      [afterSnapshot.dataDir, afterSnapshot.ids, 'is unreadable \\(Unexpected end of JSON input\\) while \\S+snapshot\\.json exists'],
      [copy, ids.sort(), 'is missing; refusing to start from a journal nothing vouches for'],
    ] as const) {
      const refused = await refusal({ dataDir });
      expect(refused).toMatch(new RegExp(`^${join(dataDir, 'manifest.json')} ${problem}`));
      expect(refused).toContain(`Restore it from a backup, or, to start from `);
      expect(refused.endsWith(OVERRULE)).toBe(true);
      const overruled = await served(dataDir, { truncateDamagedJournal: true });
      expect(overruled.ids).toEqual(acknowledged);
      expect(overruled.warnings).toEqual([expect.stringMatching(/^--truncate-damaged-journal: \S+manifest\.json is (unreadable|missing).*; started from .* as they are/)]);
      // The start wrote the manifest anew: the next needs no flag.
      expect(await served(dataDir)).toEqual({ ids: acknowledged, warnings: [] });
    }
  });

  it('whose newest journal segment was deleted is refused with the way out, which starts from the records before it and says so', async () => {
    const { dataDir, ids } = await killedAfterSnapshot();
    const third = await withWorkflows(dataDir, 1);
    const crashed = crashCopy(dataDir);
    await third.hub.close();
    const newest = journalOf(crashed).at(-1)!;
    unlinkSync(join(crashed, newest));
    expect(await refusal({ dataDir: crashed })).toBe(
      `journal ${join(crashed, newest)} is missing (the manifest names it as the newest segment); refusing to start without its records. Restore it from a backup, or, to start from the records before it, ${OVERRULE}`,
    );
    const overruled = await served(crashed, { truncateDamagedJournal: true });
    expect(overruled.ids).toEqual(ids);
    expect(overruled.warnings).toEqual([expect.stringMatching(new RegExp(`^--truncate-damaged-journal: journal ${join(crashed, newest)} was missing \\(the manifest named it as the newest segment\\); the state is as of record \\d+$`))]);
  });

  it('that is new and empty starts, and so does one of a hub killed before its first snapshot', async () => {
    expect(await served(tempDir())).toEqual({ ids: [], warnings: [] });
    const dataDir = tempDir();
    const { ids } = await withWorkflows(dataDir, 2);
    expect(await served(crashCopy(dataDir))).toEqual({ ids: ids.sort(), warnings: [] });
  });
});
