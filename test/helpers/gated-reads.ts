import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished, vi } from 'vitest';
import { DataFiles } from '../../server/data-files.ts';
import { deferred, untilTrue } from './wait.ts';

/** A data root holding one small output file, removed when the test ends. */
export function outputRoot(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sb-outputs-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.csv');
  writeFileSync(file, 'a,b\n1,2\n');
  return { dir, file };
}

/**
 * Holds every reading of a report's files until `gate` is resolved, as hashing a big one would;
 * `reading()` resolves once the hub has begun one. Undone when the test ends.
 */
export function gateFileReads() {
  const gate = deferred();
  const observe = DataFiles.prototype.observe;
  const spy = vi.spyOn(DataFiles.prototype, 'observe').mockImplementation(async function (this: DataFiles, ...args: Parameters<DataFiles['observe']>) {
    await gate.promise;
    return observe.apply(this, args);
  });
  onTestFinished(() => spy.mockRestore());
  return { gate, reading: () => untilTrue(() => spy.mock.calls.length > 0, 'the hub reading the output') };
}
