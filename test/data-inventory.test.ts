import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkflowHandle } from '../client-sdk/index.ts';
import { agent, control, startHub, tempDir } from './helpers/hub.ts';
import { deferred, untilOrder } from './helpers/wait.ts';
import { codeOf, codeOfCall } from './helpers/errors.ts';
import { DataFiles } from '../server/data-files.ts';

const sha256 = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');

/** A hub whose only data root is a fresh temp folder, a control client and a workflow. */
async function setup(config: { enableDataValidation?: boolean } = {}) {
  const root = tempDir('switchboard-data-');
  const hub = await startHub({ dataRoots: [root] });
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'inventory', config });
  const write = (name: string, content: string | Buffer) => {
    const path = join(root, name);
    writeFileSync(path, content);
    return path;
  };
  return { hub, client, wf, root, write };
}

/** The workflow's data references, as a control client reads them. */
const dataOf = async (wf: WorkflowHandle) => (await wf.get()).data;

describe('data inventory over the network', () => {
  it('registers a real file from the control SDK with its size, sha256 and the control client as provenance', async () => {
    const { wf, write } = await setup();
    const content = 'id,name\n1,Ada\n2,Grace\n';
    const ref = await wf.addDataReference({
      id: 'customers',
      path: write('customers.csv', content),
      description: 'Customer dataset',
      tags: ['raw', 'pii'],
      metadata: { study: 'EXP001', participants: 100 },
    });
    expect(ref).toMatchObject({
      id: 'customers',
      size: Buffer.byteLength(content),
      checksum: sha256(content),
      status: 'valid',
      dataType: 'csv',
      location: 'file',
      version: 1,
      metadata: { study: 'EXP001', participants: 100 },
      provenance: { registeredBy: { role: 'admin', name: 'test-admin' }, agentId: null, workOrderId: null, source: 'external' },
    });
    // A file of several chunks is streamed through the hash, not read at once.
    const big = Buffer.alloc(5 * 1024 * 1024 + 17, 7);
    const large = await wf.addDataReference({ path: write('large.bin', big) });
    expect([large.size, large.checksum]).toEqual([big.length, sha256(big)]);
    const remote = await wf.addDataReference({ path: 's3://lake/sales/2024.parquet', size: 1234 });
    expect(remote).toMatchObject({ status: 'registered', location: 'uri', dataType: 'parquet', size: 1234, checksum: null });
  });

  it('records a missing file as `missing`, or refuses it with NOT_FOUND when requireExists is set', async () => {
    const { wf, root } = await setup();
    const missing = await wf.addDataReference({ id: 'later', path: join(root, 'not-yet.csv') });
    expect(missing).toMatchObject({ status: 'missing', size: null, checksum: null });
    expect(await codeOf(wf.addDataReference({ path: join(root, 'nope.csv'), requireExists: true }))).toBe('NOT_FOUND');
    expect(Object.keys(await dataOf(wf))).toEqual(['later']);
  });

  it('tells valid, changed and missing apart when a file is re-validated, and keeps versions on update', async () => {
    const { wf, write } = await setup();
    const path = write('model.pkl', 'weights v1');
    await wf.addDataReference({ id: 'model', path });
    expect((await wf.validateDataReference('model')).status).toBe('valid');
    write('model.pkl', 'weights v2, retrained');
    const changed = await wf.validateDataReference('model');
    expect(changed).toMatchObject({ status: 'changed', checksum: sha256('weights v1'), version: 1 });
    const updated = await wf.updateDataReference('model', { description: 'retrained' });
    expect(updated).toMatchObject({ version: 2, status: 'valid', checksum: sha256('weights v2, retrained'), description: 'retrained' });
    expect(updated.history).toEqual([expect.objectContaining({ version: 1, checksum: sha256('weights v1'), status: 'changed', updatedBy: 'test-admin' })]);
    rmSync(path);
    expect((await wf.validateDataReference('model')).status).toBe('missing');
    expect(await codeOf(wf.updateDataReference('model', { description: 'x', expectedVersion: 1 }))).toBe('CONFLICT');
  });

  it('never records what it read at one path under another that an update moved the reference to meanwhile', async () => {
    const { wf, write } = await setup();
    // Big enough that reading it takes a while, off the writer.
    const path = write('big.bin', Buffer.alloc(64 * 1024 * 1024, 7));
    await wf.addDataReference({ id: 'ref', path });
    const remeasured = wf.updateDataReference('ref', { description: 're-measured' });
    const moved = wf.updateDataReference('ref', { path: 's3://lake/elsewhere.parquet' });
    const [first, second] = await Promise.allSettled([remeasured, moved]);
    expect(second.status).toBe('fulfilled');
    const ref = (await dataOf(wf)).ref!;
    expect(ref).toMatchObject({ path: 's3://lake/elsewhere.parquet', location: 'uri', status: 'registered', size: null, checksum: null });
    // The re-measure either landed first (and the move followed) or was refused once the move had landed.
    if (first.status === 'rejected') expect((first.reason as { code: string }).code).toBe('CONFLICT');
    else expect(ref.history.map((h) => h.path)).toContain(path);
  }, 60_000);

  // That the refusal changes nothing, in a batch too: test/domain/inventory.test.ts.
  it('never silently overwrites: registering an existing id is CONFLICT', async () => {
    const { wf, write } = await setup();
    await wf.addDataReference({ id: 'raw', path: write('raw.csv', 'a') });
    expect(await codeOf(wf.addDataReference({ id: 'raw', path: write('other.csv', 'b') }))).toBe('CONFLICT');
  });

  it('refuses paths outside the data roots (absolute, `..`, symlinks) with FORBIDDEN and registers nothing', async () => {
    const { wf, root, write } = await setup();
    const outside = tempDir('switchboard-outside-');
    writeFileSync(join(outside, 'secret.txt'), 'top secret');
    symlinkSync(join(outside, 'secret.txt'), join(root, 'innocent.csv'));
    symlinkSync(outside, join(root, 'linked-dir'));
    mkdirSync(join(root, 'sub'));
    // Unresolvable: a path through it must not tell what lies outside the roots (as a directory the hub may not enter would).
    symlinkSync(join(outside, 'loop'), join(outside, 'loop'));
    const attempts = [
      '/etc/passwd',
      join(outside, 'loop', 'secret.txt'),
      // Unnormalised on purpose: the hub resolves the `..` itself.
      `${root}/sub/../../${basename(outside)}/secret.txt`,
      join(root, 'innocent.csv'),
      join(root, 'linked-dir', 'not-there-yet.csv'),
      `file://${join(outside, 'secret.txt')}`,
    ];
    for (const path of attempts) expect([path, await codeOf(wf.addDataReference({ path }))]).toEqual([path, 'FORBIDDEN']);
    // All or none: one bad path in a batch leaves the good ones unregistered too.
    const batch = [{ path: write('good.csv', 'fine') }, { path: '/etc/hostname' }];
    expect(await codeOf(wf.addDataReferences(batch))).toBe('FORBIDDEN');
    expect(await dataOf(wf)).toEqual({});
  });

  it('refuses file:// URIs that name no local file (a host, an encoded slash, bad escapes) with VALIDATION, validating or not', async () => {
    for (const enableDataValidation of [true, false]) {
      const { wf, root, write } = await setup({ enableDataValidation });
      write('a.csv', 'x');
      const uris = [
        'file://evil/etc/passwd',
        `file://evil${root}/a.csv`,
        'file:///a%2Fb',
        `file://${root}%2Fa.csv`,
        `file://${root}/a%E0%A4%A.csv`,
        `file://${root}/a.csv%00`,
        `file://${root}/a.csv?version=2`,
        'file://[',
      ];
      for (const path of uris) {
        expect([path, await codeOf(wf.addDataReference({ path }))]).toEqual([path, 'VALIDATION']);
        expect([path, await codeOf(wf.addDataReferences([{ path: 's3://b/ok' }, { path }]))]).toEqual([path, 'VALIDATION']);
      }
      expect(await dataOf(wf)).toEqual({});
      // The same file named properly is fine.
      const ref = await wf.addDataReference({ path: `file://localhost${root}/a.csv` });
      expect(ref.path).toBe(enableDataValidation ? join(root, 'a.csv') : `file://localhost${root}/a.csv`);
      expect(await codeOf(wf.updateDataReference(ref.id, { path: 'file://evil/etc/passwd' }))).toBe('VALIDATION');
      expect((await dataOf(wf))[ref.id]!.version).toBe(1);
    }
  });

  it('turns a file:// URI fileURLToPath cannot convert into VALIDATION, even one that bypassed the schema', async () => {
    const files = await DataFiles.open([tempDir()]);
    for (const path of ['file://evil/etc/passwd', 'file:///a%2Fb', 'file:///%E0%A4%A']) expect([path, codeOfCall(() => files.localPath(path))]).toEqual([path, 'VALIDATION']);
    expect(files.localPath('file://localhost/srv/a.csv')).toBe('/srv/a.csv');
  });

  it('never reads the hub’s own journal, snapshot or tokens, even inside a data root', async () => {
    const dataDir = tempDir();
    const hub = await startHub({ dataDir, dataRoots: [dataDir] });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'own files' });
    expect(await codeOf(wf.addDataReference({ path: join(dataDir, 'tokens.json') }))).toBe('FORBIDDEN');
    mkdirSync(join(dataDir, 'workflows'), { recursive: true });
    writeFileSync(join(dataDir, 'workflows', 'output.csv'), 'a,b\n');
    expect((await wf.addDataReference({ path: join(dataDir, 'workflows', 'output.csv') })).checksum).toBe(sha256('a,b\n'));
  });

  it('never reads the hub’s own files through a hard link, wherever the link is and whenever the file appeared', async () => {
    const root = tempDir('switchboard-data-');
    const dataDir = tempDir();
    const hub = await startHub({ dataDir, dataRoots: [root] });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'hard links' });
    const segment = readdirSync(dataDir).find((name) => name.endsWith('.journal'))!;
    // A file the hub made after it started, in a folder of its own (its archive).
    mkdirSync(join(dataDir, 'archive'), { recursive: true });
    writeFileSync(join(dataDir, 'archive', 'old.journal'), 'kept by the hub');
    mkdirSync(join(dataDir, 'workflows'));
    const links = [
      [join(dataDir, segment), join(root, 'j')],
      [join(dataDir, 'hub.lock'), join(root, 'lock.csv')],
      [join(dataDir, 'archive', 'old.journal'), join(root, 'archive.csv')],
      // Inside workflows/, which the hub does read: the inode, not the name, decides.
      [join(dataDir, segment), join(dataDir, 'workflows', 'j')],
    ] as const;
    for (const [target, link] of links) linkSync(target, link);
    for (const [, link] of links) expect([link, await codeOf(wf.addDataReference({ path: link }))]).toEqual([link, 'FORBIDDEN']);
    expect(await dataOf(wf)).toEqual({});

    // Linking a file into the data directory makes it one of the hub's: it is refused from then on.
    writeFileSync(join(root, 'mine.csv'), 'a,b\n');
    const mine = await wf.addDataReference({ id: 'mine', path: join(root, 'mine.csv') });
    expect(mine.status).toBe('valid');
    linkSync(join(root, 'mine.csv'), join(dataDir, 'mine.csv'));
    const version = (await wf.summary()).version;
    expect(await codeOf(wf.validateDataReference('mine'))).toBe('FORBIDDEN');
    expect((await wf.summary()).version).toBe(version);
    expect((await dataOf(wf)).mine).toEqual(mine);
  });

  it('refuses oversized metadata, too many tags and an over-long path with VALIDATION and registers nothing', async () => {
    const { wf, write } = await setup();
    const path = write('a.csv', 'x');
    expect(await codeOf(wf.addDataReference({ path, metadata: { blob: 'x'.repeat(20_000) } }))).toBe('VALIDATION');
    // Keys are trimmed: two that become one would lose a value without a word.
    expect(await codeOf(wf.addDataReference({ path, metadata: { study: 'EXP001', ' study': 'EXP002' } }))).toBe('VALIDATION');
    expect(await codeOf(wf.addDataReference({ path, tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }))).toBe('VALIDATION');
    expect(await codeOf(wf.addDataReference({ path: `/${'p'.repeat(2048)}` }))).toBe('VALIDATION');
    expect(await codeOf(wf.addDataReferences(Array.from({ length: 1001 }, (_, i) => ({ path: `s3://b/${i}` }))))).toBe('VALIDATION');
    expect(await dataOf(wf)).toEqual({});
    const ref = await wf.addDataReference({ path, metadata: { study: 'EXP001' } });
    expect(await codeOf(wf.updateDataReference(ref.id, { metadata: { 'study ': 'EXP002', study: 'EXP003' } }))).toBe('VALIDATION');
    expect(await wf.getDataReference(ref.id)).toMatchObject({ version: 1, metadata: { study: 'EXP001' } });
  });

  it('reads no file when the workflow does not validate data', async () => {
    const { wf } = await setup({ enableDataValidation: false });
    const ref = await wf.addDataReference({ path: '/etc/passwd' });
    expect(ref).toMatchObject({ path: '/etc/passwd', status: 'registered', size: null, checksum: null, validatedAt: null });
    expect(await codeOf(wf.validateDataReference(ref.id))).toBe('VALIDATION');
  });

  it('fills provenance from the attempt when an agent registers data with ctx.addDataReference or returns outputs', async () => {
    const { hub, wf, write } = await setup();
    await wf.start();
    const loader = await agent(hub, { agentId: 'loader', agentType: 'loading' });
    await loader.onTask('load', async (_task, ctx) => {
      await ctx.addDataReference({ id: 'partial', path: write('part-0.csv', 'rows 0-99'), tags: ['partial'] });
      return { result: { rows: 200 }, outputs: [{ id: 'full', path: write('full.csv', 'rows 0-199'), dataType: 'csv' }] };
    });
    await wf.createWorkOrder({ id: 'load', taskType: 'load' });
    const order = await untilOrder(hub, wf.id, 'load', 'completed');
    expect(order.outputs).toEqual(['partial', 'full']);
    for (const id of ['partial', 'full']) {
      expect(await wf.getDataReference(id)).toMatchObject({
        status: 'valid',
        provenance: { agentId: 'loader', workOrderId: 'load', attempt: 1, source: 'produced', registeredBy: { role: 'agent' } },
      });
    }
    expect((await wf.getDataReference('full')).checksum).toBe(sha256('rows 0-199'));

    // Outputs the hub refuses fail the order with the reason, instead of leaving it running.
    await loader.onTask('leak', () => ({ outputs: [{ path: '/etc/passwd' }] }));
    await wf.createWorkOrder({ id: 'leak', taskType: 'leak' });
    const leak = await untilOrder(hub, wf.id, 'leak', 'failed');
    expect(leak.error).toContain('outside the hub');
    expect(Object.keys(await dataOf(wf)).sort()).toEqual(['full', 'partial']);
  });

  it('refuses agent registrations without a current attempt', async () => {
    const { hub, wf, write } = await setup();
    await wf.start();
    const started = deferred<{ workOrderId: string; attemptToken: string }>();
    const release = deferred();
    const worker = await agent(hub, { agentId: 'worker', agentType: 'w' });
    await worker.onTask('t', async (task) => {
      started.resolve(task);
      await release.promise;
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const task = await started.promise;
    const path = write('x.csv', 'x');
    const forged = worker.connection.request('data.register', { workflowId: wf.id, workOrderId: 'job', attemptToken: 'att_forged', path });
    expect(await codeOf(forged)).toBe('STALE_ATTEMPT');
    const spoofed = worker.connection.request('data.register', { workflowId: wf.id, workOrderId: 'job', attemptToken: task.attemptToken, path, agentId: 'someone-else' } as never);
    expect(await codeOf(spoofed)).toBe('VALIDATION');
    release.resolve();
    expect(await dataOf(wf)).toEqual({});
  });
});
