import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectControl } from '../../client-sdk/index.ts';
import { tempDir, TOKENS } from '../helpers/hub.ts';
import { HubUnderTest } from './cluster.ts';

/** Creates `count` work orders in workflow `id` (creating it first when asked), each acknowledged. */
async function createOrders(url: string, id: string, count: number, create: boolean): Promise<void> {
  const client = await connectControl({ url, token: TOKENS.admin });
  const wf = create ? await client.createWorkflow({ id, userQuery: 'damaged files' }) : client.workflow(id);
  for (let i = 0; i < count; i++) await wf.createWorkOrder({ taskType: 'idle', description: `order ${i}` });
  client.close();
}

async function orderCount(url: string, id: string): Promise<number> {
  const client = await connectControl({ url, token: TOKENS.admin });
  const count = Object.keys((await client.workflow(id).get()).workOrders).length;
  client.close();
  return count;
}

/** A digest of every data file of the directory and its folders (the lock aside), to show that a refused start changed nothing. */
const contents = (dir: string) =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && !entry.name.startsWith('hub.lock'))
      .map((entry) => {
        const path = join(entry.parentPath, entry.name);
        return [path.slice(dir.length + 1), createHash('sha256').update(readFileSync(path)).digest('hex')];
      }),
  );

describe('damaged data files', () => {
  it.each([
    ['a byte flipped 20 bytes before its end', (file: string) => {
      const bytes = readFileSync(file);
      bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x01;
      writeFileSync(file, bytes);
    }],
    ['7 bytes cut off its end', (file: string) => truncateSync(file, readFileSync(file).length - 7)],
  ])('refuses to start when an earlier journal segment has %s, and --truncate-damaged-journal says what it drops', async (_, damage) => {
    const dataDir = tempDir();
    const hub = await HubUnderTest.create(dataDir);
    await hub.start();
    await createOrders(hub.url, 'damaged', 40, true);
    await hub.crash();
    await hub.start();
    await createOrders(hub.url, 'damaged', 40, false);
    await hub.crash();
    expect(readdirSync(dataDir).filter((f) => f.endsWith('.journal')).sort()).toEqual(['00000001.journal', '00000002.journal']);

    damage(join(dataDir, '00000001.journal'));
    const before = contents(dataDir);
    const refused = hub.refusedStart();
    expect(refused.status).not.toBe(0);
    expect(refused.output).toMatch(/journal \S*00000001\.journal is damaged at byte \d+ \(line \d+\)/);
    expect(refused.output).toMatch(/--truncate-damaged-journal/);
    expect(contents(dataDir)).toEqual(before);

    const repaired = await hub.start(['--truncate-damaged-journal']);
    const said = await repaired.waitForOutput(/the state is as of record/);
    expect(said).toMatch(/deleted 1 line\(s\) of 00000001\.journal from byte \d+, 00000002\.journal \(\d+ line\(s\)\)/);
    // The first run's orders before the damaged record; the damaged one and the second run's are gone, as said.
    expect(await orderCount(hub.url, 'damaged')).toBe(39);
    expect(await hub.stop()).toBe(0);
    // Repaired once, the directory starts as usual.
    await hub.start();
    expect(await orderCount(hub.url, 'damaged')).toBe(39);
    expect(await hub.stop()).toBe(0);
  }, 120_000);

  it('refuses to start from a snapshot that was edited, replaced or deleted after a clean stop', async () => {
    const dataDir = tempDir();
    const hub = await HubUnderTest.create(dataDir);
    await hub.start();
    await createOrders(hub.url, 'snap', 40, true);
    expect(await hub.stop()).toBe(0);
    const snapshotFile = join(dataDir, 'snapshot.json');
    const original = readFileSync(snapshotFile, 'utf8');

    // One work order removed; the file stays valid JSON.
    const edited = JSON.parse(original) as { docs: Array<[string, { doc: { workOrders: Record<string, unknown> } }]> };
    const orders = edited.docs.find(([key]) => key === 'snap')![1].doc.workOrders;
    delete orders[Object.keys(orders)[0]!];
    writeFileSync(snapshotFile, JSON.stringify(edited));
    let refused = hub.refusedStart();
    expect(refused.status).not.toBe(0);
    expect(refused.output).toMatch(/snapshot \S*snapshot\.json does not match its checksum/);

    // A snapshot that is whole by its own checksum, but not the one the journal continues from.
    const other = tempDir();
    const stranger = await HubUnderTest.create(other);
    await stranger.start();
    await createOrders(stranger.url, 'snap', 40, true);
    expect(await stranger.stop()).toBe(0);
    writeFileSync(snapshotFile, readFileSync(join(other, 'snapshot.json')));
    refused = hub.refusedStart();
    expect(refused.status).not.toBe(0);
    expect(refused.output).toMatch(/is not the snapshot the journal continues from/);

    unlinkSync(snapshotFile);
    refused = hub.refusedStart();
    expect(refused.status).not.toBe(0);
    expect(refused.output).toMatch(/snapshot\.json is missing/);

    writeFileSync(snapshotFile, original);
    await hub.start();
    expect(await orderCount(hub.url, 'snap')).toBe(40);
    expect(await hub.stop()).toBe(0);
  }, 120_000);
});
