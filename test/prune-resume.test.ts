import { describe, expect, it } from 'vitest';
import { EmbeddedStore } from '../server/index.ts';
import type { WorkflowArchive } from '../server/store/archive.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { control, monitor, startHub, tempDir } from './helpers/hub.ts';
import { deferred, untilTrue } from './helpers/wait.ts';
import { WrappedStore } from './helpers/wrapped-store.ts';

/** An archive whose deletions finish their clean-up (unlinking files, writing the index anew) only once let through. */
class SlowCleanUp extends WrappedStore {
  readonly unlisted = deferred();
  readonly cleanUp = deferred();

  override get archive(): WorkflowArchive {
    const archive = this.inner.archive;
    return new Proxy(archive, {
      get: (target, key) => {
        if (key === 'remove') {
          return async (...args: Parameters<WorkflowArchive['remove']>) => {
            await target.remove(...args);
            this.unlisted.resolve();
            await this.cleanUp.promise;
          };
        }
        const value = Reflect.get(target, key, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }
}

describe('a prune still cleaning up', () => {
  it('never lets a workflow made anew under a pruned id patch the versions monitors hold of the old one', async () => {
    const dataDir = tempDir();
    const store = new SlowCleanUp(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 32 * 1024 * 1024, onWarning: () => undefined }));
    const hub = await startHub({ dataDir, keepFinishedMs: 0, sweepIntervalMs: 10 }, { store });
    const client = await control(hub);
    const old = await client.createWorkflow({ id: 'nightly', userQuery: 'yesterday' });
    await old.start();
    await old.updateProgress('load', 50);
    const dashboard = await monitor(hub);
    const all = await dashboard.subscribeAll();
    await old.cancel('done');
    await untilTrue(() => !hub.state.workflows.has('nightly'), 'the old one archived');
    await all.get('nightly')!.until((w) => (w as Workflow).status === 'cancelled', { what: 'the old one ended on the dashboard' });
    const held = await (await monitor(hub)).connection.request('subscribe', { doc: 'nightly' });
    if (held.mode !== 'snapshot') throw new Error(`a first subscription was answered ${held.mode}`);

    const pruning = client.pruneArchive(0);
    await store.unlisted.promise;
    // Made anew while the prune cleans up, up to the version held of the old one, then one past it.
    const fresh = await client.createWorkflow({ id: 'nightly', userQuery: 'today' });
    for (let percentage = 1; fresh.version < held.version; percentage++) await fresh.updateProgress('load', percentage);
    const resumed = await (await monitor(hub)).connection.request('subscribe', { doc: 'nightly', version: held.version, epoch: held.epoch });
    await fresh.updateProgress('load', 99);
    const now = () => JSON.parse(JSON.stringify(hub.state.workflows.get('nightly'))) as Workflow;
    await untilTrue(() => dashboard.docs.get('nightly')?.version === fresh.version, 'the dashboard at the new one’s version');
    const mirrored = dashboard.docs.get('nightly')!.state;
    store.cleanUp.resolve();
    await pruning;

    expect(resumed).toMatchObject({ mode: 'snapshot', state: { userQuery: 'today' } });
    expect(mirrored).toEqual(now());
  });
});
