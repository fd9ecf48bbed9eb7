import { readdirSync, readFileSync } from 'node:fs';
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

});
