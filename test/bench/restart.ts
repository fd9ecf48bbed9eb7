import { cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildPackage, dataDir, startHub, timeCompiledStart, type BenchContext } from './launch.ts';
import { check, round, type ScenarioResult } from './report.ts';

/** Bytes of the journal segments and of the snapshot in a data directory. */
function onDisk(dir: string): { journalMB: number; snapshotMB: number } {
  let journal = 0;
  let snapshot = 0;
  for (const name of readdirSync(dir)) {
    const size = statSync(join(dir, name)).size;
    if (name.endsWith('.journal')) journal += size;
    if (name === 'snapshot.json') snapshot += size;
  }
  return { journalMB: round(journal / 2 ** 20, 1), snapshotMB: round(snapshot / 2 ** 20, 1) };
}

/**
 * Scenario 6: restart. A hub child is loaded with work orders and killed (kill -9: everything is
 * in the journal); a new hub is started on that directory and timed to listening. It is then
 * stopped cleanly (which writes a snapshot) and started once more. The raw column is a hub
 * starting on an empty directory: the cost of the process itself. The same starts are timed for
 * the compiled CLI (`node bin/switchboard.mjs start`, which runs the bundle dist/cli.mjs), as an
 * installed package runs.
 */
export async function runRestart(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const { orders } = ctx.scale.restart;
  const label = orders.toLocaleString('en-US');
  const dir = dataDir(ctx, 'restart');

  const empty = await startHub(ctx, 'restart-empty');
  await empty.hub.stop();

  ctx.log('restart: building the compiled CLI, then timing it on empty directories');
  buildPackage();
  const compiledEmptyRuns: number[] = [];
  for (let run = 0; run < 7; run++) compiledEmptyRuns.push(await timeCompiledStart(dataDir(ctx, 'compiled-empty'), 'SIGTERM'));
  const compiledEmpty = [...compiledEmptyRuns].sort((a, b) => a - b)[3]!;

  ctx.log(`restart: loading ${label} work orders, then kill -9`);
  const first = await startHub(ctx, 'restart-load', { dataDir: dir, snapshotAfterBytes: Number.MAX_SAFE_INTEGER });
  const preload = await first.hub.request<{ ms: number }>('preload', { orders, batch: 1000 });
  await first.hub.kill();
  const journalOnly = onDisk(dir);
  // A copy for the compiled CLI, which is killed once listening, so this one stays journal only.
  const journalCopy = dataDir(ctx, 'compiled-journal');
  cpSync(dir, journalCopy, { recursive: true });

  ctx.log('restart: from the journal');
  const fromJournal = await startHub(ctx, 'restart-journal', { dataDir: dir });
  // One more change, so that the clean stop folds everything into a snapshot.
  await fromJournal.hub.request('preload', { orders: 1, batch: 1 });
  await fromJournal.hub.stop(120_000);
  const withSnapshot = onDisk(dir);

  ctx.log('restart: from the snapshot');
  const fromSnapshot = await startHub(ctx, 'restart-snapshot', { dataDir: dir });
  await fromSnapshot.hub.stop(120_000);

  ctx.log('restart: the compiled CLI from the journal, then from the snapshot');
  const compiledJournal = await timeCompiledStart(journalCopy, 'SIGKILL');
  const compiledSnapshot = await timeCompiledStart(dir, 'SIGTERM');

  return {
    name: 'restart',
    title: '6. Restart',
    checks: [
      check(`journal only (${label} orders): createHub → listening`, 'ms', fromJournal.ready.createHubMs, empty.ready.createHubMs, { max: 2000, text: '≤ 2 s' }),
      check(`journal only: process spawn → listening`, 'ms', fromJournal.spawnToReadyMs, empty.spawnToReadyMs),
      check(`snapshot (${label} orders): createHub → listening`, 'ms', fromSnapshot.ready.createHubMs, empty.ready.createHubMs, { max: 2000, text: '≤ 2 s' }),
      check(`snapshot: process spawn → listening`, 'ms', fromSnapshot.spawnToReadyMs, empty.spawnToReadyMs),
      check('compiled CLI, empty directory: process spawn → listening (median of 7)', 'ms', compiledEmpty, null, { max: 300, text: '≤ 300 ms' }),
      check(`compiled CLI, journal only (${label} orders): process spawn → listening`, 'ms', compiledJournal, compiledEmpty),
      check(`compiled CLI, snapshot (${label} orders): process spawn → listening`, 'ms', compiledSnapshot, compiledEmpty),
    ],
    details: {
      orders,
      preloadMs: round(preload.ms),
      journalOnly,
      withSnapshot,
      empty: { spawnToReadyMs: round(empty.spawnToReadyMs), ...empty.ready },
      fromJournal: { spawnToReadyMs: round(fromJournal.spawnToReadyMs), ...fromJournal.ready },
      fromSnapshot: { spawnToReadyMs: round(fromSnapshot.spawnToReadyMs), ...fromSnapshot.ready },
      compiledCli: { emptyRunsMs: compiledEmptyRuns.map((ms) => round(ms)), fromJournalMs: round(compiledJournal), fromSnapshotMs: round(compiledSnapshot) },
    },
    notes: [
      `On disk: journal only ${journalOnly.journalMB} MB; after the clean stop ${withSnapshot.snapshotMB} MB of snapshot and ${withSnapshot.journalMB} MB of journal.`,
      'createHub → listening is the restart proper: the store recovered, the state and its indexes rebuilt, the port open. Process spawn → listening adds starting node and loading the modules: the TypeScript sources through tsx for the bench hub, the bundled dist/cli.mjs for the compiled CLI (`node bin/switchboard.mjs start`, as an installed package runs). The raw column is the same kind of hub on an empty directory.',
    ],
    durationMs: performance.now() - started,
  };
}
