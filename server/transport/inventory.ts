import { HubError } from '../../shared/errors.ts';
import { isRemoteUri, type DataReferenceSpec } from '../../shared/schemas/data.ts';
import type { DataFiles } from '../data-files.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import { getData, searchData } from '../domain/data/data-search.ts';
import type { PreparedSpec } from '../domain/data/inventory.ts';
import { lineageGraph, traverse } from '../domain/data/lineage-graph.ts';
import { runEvent } from '../domain/data/open-lineage.ts';
import type { StateWriter } from '../state-writer.ts';
import type { WorkflowReads } from '../workflow-reads.ts';
import type { Handlers } from './namespaces.ts';

/** Files observed at once per request, so a bulk registration cannot exhaust file descriptors. */
const PARALLEL_FILES = 8;

type DataEvents = 'data.register' | 'data.registerMany' | 'data.update' | 'data.validate' | 'data.get' | 'data.search';
type LineageEvents = 'lineage.link' | 'lineage.upstream' | 'lineage.downstream' | 'lineage.graph' | 'lineage.openLineage';

/** Whether the hub reads local files for this workflow (NOT_FOUND for an unknown workflow). */
function validates(hub: StateWriter, workflowId: string): boolean {
  return requireWorkflow(hub.state, workflowId).config.enableDataValidation;
}

/** How look treats a path: `check`, read local files at all; `requireExists`, a missing one is NOT_FOUND. */
interface LookOptions {
  check: boolean;
  requireExists: boolean;
}

/** The path as it will be recorded, and what the hub saw there (null when it reads nothing). */
async function look(files: DataFiles, path: string, { check, requireExists }: LookOptions): Promise<{ path: string; observed: PreparedSpec['observed'] }> {
  if (!check || isRemoteUri(path)) return { path, observed: null };
  const local = files.localPath(path);
  return { path: local, observed: await files.observe(local, { requireExists }) };
}

async function prepareOne(files: DataFiles, spec: DataReferenceSpec, { check }: { check: boolean }): Promise<PreparedSpec> {
  return { ...spec, ...(await look(files, spec.path, { check, requireExists: spec.requireExists })) };
}

/**
 * Readies specs for the pure domain before dispatch (async, off the mutex): when the workflow
 * validates data, local paths are made absolute and their files observed (size, sha256); URIs,
 * and every path of a workflow that does not validate, are recorded as given and nothing is read.
 */
export async function prepareSpecs(hub: StateWriter, files: DataFiles, workflowId: string, specs: readonly DataReferenceSpec[]): Promise<PreparedSpec[]> {
  const check = validates(hub, workflowId);
  const prepared: PreparedSpec[] = new Array(specs.length);
  let next = 0;
  const worker = async () => {
    while (next < specs.length) {
      const index = next++;
      prepared[index] = await prepareOne(files, specs[index]!, { check });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_FILES, specs.length) }, worker));
  return prepared;
}

/** The `/control` handlers of the data inventory and lineage: files are checked first, then the command is dispatched. */
export function inventoryHandlers(hub: StateWriter, reads: WorkflowReads, files: DataFiles, openLineageProducer: string): Pick<Handlers<'control'>, DataEvents | LineageEvents> {
  return {
    'data.register': async ({ workflowId, ...spec }, session) => {
      const items = await prepareSpecs(hub, files, workflowId, [spec]);
      const reply = await hub.dispatch({ type: 'data.register', input: { workflowId, items }, actor: session.actor });
      return { version: reply.version, item: reply.items[0]! };
    },
    'data.registerMany': async ({ workflowId, items }, session) => {
      const prepared = await prepareSpecs(hub, files, workflowId, items);
      return hub.dispatch({ type: 'data.register', input: { workflowId, items: prepared }, actor: session.actor });
    },
    'data.update': async (input, session) => {
      // The path as recorded now (the reference itself changes in place if another update lands while the file is read).
      const recorded = getData(hub.state, input.workflowId, input.dataId).item.path;
      const seen = await look(files, input.path ?? recorded, { check: validates(hub, input.workflowId), requireExists: input.requireExists });
      // An update that does not name a path keeps the recorded one, whatever the hub saw; the command checks it is still the one seen.
      const prepared = input.path === undefined ? { ...input, observed: seen.observed, observedPath: recorded } : { ...input, ...seen };
      return hub.dispatch({ type: 'data.update', input: prepared, actor: session.actor });
    },
    'data.validate': async (input, session) => {
      const ref = getData(hub.state, input.workflowId, input.dataId).item;
      if (!validates(hub, input.workflowId)) throw new HubError('VALIDATION', `data validation is off for workflow ${input.workflowId} (config.enableDataValidation)`);
      if (ref.location === 'uri') throw new HubError('VALIDATION', `${ref.path} is a URI; the hub validates local files only`);
      const observed = await files.observe(ref.path);
      return hub.dispatch({ type: 'data.validate', input: { ...input, version: ref.version, observed }, actor: session.actor });
    },
    'data.get': async (input) => getData(await reads.stateFor(input.workflowId), input.workflowId, input.dataId),
    'data.search': async (input) => searchData(await reads.stateFor(input.workflowId), input),
    'lineage.link': (input, session) => hub.dispatch({ type: 'lineage.link', input, actor: session.actor }),
    'lineage.upstream': async (input) => traverse(await reads.stateFor(input.workflowId), input, 'upstream'),
    'lineage.downstream': async (input) => traverse(await reads.stateFor(input.workflowId), input, 'downstream'),
    'lineage.graph': async (input) => lineageGraph(await reads.stateFor(input.workflowId), input),
    'lineage.openLineage': async (input) => runEvent(await reads.stateFor(input.workflowId), input, openLineageProducer),
  };
}
