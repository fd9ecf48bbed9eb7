import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSnapshot } from '../server/store/snapshot-writer.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';

const PART = '.snapshot.json.part';

describe('a snapshot that fails', () => {
  it('takes its unfinished file away, leaving the snapshot before it as it was', async () => {
    const dir = tempDir();
    const chunk = (text: string) => Buffer.from(text);
    const json = (chunks: () => AsyncGenerator<Buffer>) => ({ chunks: chunks(), release: () => undefined });
    const first = await writeSnapshot(dir, 1, 1, [{ key: 'w', v: 1, json: json(async function* () { yield chunk('{"a":1}'); }) }], undefined);
    const before = readFileSync(join(dir, 'snapshot.json'));
    // The disk fails half way through the next one (as a full one does).
    const failing = writeSnapshot(dir, 2, 2, [
      {
        key: 'w',
        v: 2,
        json: json(async function* () {
          yield chunk(`{"a":"${'x'.repeat(2 << 20)}`);
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        }),
      },
    ], first.index);
    await expect(failing).rejects.toThrow('no space left on device');
    expect(existsSync(join(dir, PART))).toBe(false);
    expect(readFileSync(join(dir, 'snapshot.json'))).toEqual(before);
  });

  it('left by a crash, is deleted at the next start, which serves what was stored', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'kept' });
    await hub.close();
    writeFileSync(join(dataDir, PART), Buffer.alloc(1 << 20, 'x'));
    const again = await startHub({ dataDir });
    expect(existsSync(join(dataDir, PART))).toBe(false);
    expect((await (await control(again)).workflow(wf.id).get()).userQuery).toBe('kept');
  });
});
