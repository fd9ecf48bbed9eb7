import { join } from 'node:path';
import { StateWriter } from '../../server/state-writer.ts';
import { HubOptions } from '../../server/options.ts';
import { EmbeddedStore } from '../../server/store/embedded-store.ts';
import { dataDir, type BenchContext } from './launch.ts';

/**
 * The hub's core in-process: a StateWriter on an embedded store in a fresh directory of the run,
 * with the default settings and no automatic snapshot (a scenario measures snapshots on its own).
 */
export async function openCoreHub(ctx: BenchContext, name: string): Promise<{ hub: StateWriter; store: EmbeddedStore; dir: string }> {
  const dir = dataDir(ctx, name);
  const defaults = HubOptions.parse({});
  const store = new EmbeddedStore({ dataDir: dir, fsync: defaults.fsync, snapshotAfterBytes: Number.MAX_SAFE_INTEGER, onWarning: (m) => ctx.log(`warning: ${m}`) });
  const hub = await StateWriter.open({
    store,
    settings: {
      outputRoot: join(dir, 'workflows'),
      kpiHistoryLimit: defaults.kpiHistoryLimit,
      dataHistoryLimit: defaults.dataHistoryLimit,
      agingMs: defaults.agingMs,
      graceMs: defaults.graceMs,
      forgetAgentsAfterMs: defaults.forgetAgentsAfterMs,
      backoffBaseMs: defaults.backoffBaseMs,
      backoffMaxMs: defaults.backoffMaxMs,
      declinedRetryMs: defaults.declinedRetryMs,
    },
  });
  return { hub, store, dir };
}
