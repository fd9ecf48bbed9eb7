import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { syncedWrite } from '../server/store/synced-write.ts';
import { tempDir } from './helpers/hub.ts';

describe('syncedWrite', () => {
  it('lands replacements of one file in the order they were asked for, leaving no temporary file', async () => {
    const dir = tempDir();
    const writes = ['first', 'second'.repeat(100_000), 'third'].map((text) => syncedWrite(dir, 'manifest.json', text));
    await Promise.all(writes);
    expect(readFileSync(`${dir}/manifest.json`, 'utf8')).toBe('third');
    expect(readdirSync(dir)).toEqual(['manifest.json']);
  });

  it('leaves no temporary file when the rename into place fails', async () => {
    const dir = tempDir();
    // A folder holding a file cannot be replaced by a file.
    mkdirSync(join(dir, 'manifest.json'));
    writeFileSync(join(dir, 'manifest.json', 'inside'), '');
    await expect(syncedWrite(dir, 'manifest.json', 'text')).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readdirSync(dir)).toEqual(['manifest.json']);
  });
});
