import { createHash } from 'node:crypto';
import { HubError } from '../../../shared/errors.ts';
import type { DataReference, DataVersion } from '../../../shared/schemas/data.ts';
import type { OpenLineageRunEvent } from '../../../shared/schemas/lineage.ts';
import { requireEntity, requireWorkflow } from '../machinery/context.ts';
import type { HubState } from '../machinery/state.ts';

const SPEC = 'https://openlineage.io/spec';
export const RUN_EVENT_SCHEMA_URL = `${SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent`;
/** The OpenLineage job namespace of everything the hub exports. */
export const JOB_NAMESPACE = 'switchboard';

const FACETS = {
  parent: `${SPEC}/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet`,
  errorMessage: `${SPEC}/facets/1-0-0/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet`,
  jobType: `${SPEC}/facets/2-0-2/JobTypeJobFacet.json#/$defs/JobTypeJobFacet`,
  jobDocumentation: `${SPEC}/facets/1-0-1/DocumentationJobFacet.json#/$defs/DocumentationJobFacet`,
  datasetDocumentation: `${SPEC}/facets/1-0-1/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet`,
  version: `${SPEC}/facets/1-0-0/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet`,
} as const;

const EVENT_TYPES = { completed: 'COMPLETE', failed: 'FAIL', cancelled: 'ABORT' } as const;

/** A UUID (version 8, "custom") derived from `name` by sha256: the same run always exports the same runId. */
export function uuidFrom(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** OpenLineage dataset naming: a local file is namespace `file` with its path; a URI is scheme://authority + path. */
export function datasetName(ref: Pick<DataReference, 'path' | 'location'>): { namespace: string; name: string } {
  if (ref.location === 'file') return { namespace: 'file', name: ref.path };
  try {
    const url = new URL(ref.path);
    return { namespace: `${url.protocol}//${url.host}`, name: decodeURIComponent(url.pathname).replace(/^\//, '') || '/' };
  } catch {
    return { namespace: 'uri', name: ref.path };
  }
}

/**
 * The version of a reference that was current at `time` (the latest made by then), or undefined
 * when none was: the reference came later, or the history no longer holds that version.
 */
function versionAt(ref: DataReference, time: number): Pick<DataVersion, 'version' | 'checksum'> | undefined {
  if (ref.updatedAt <= time) return ref;
  for (let at = ref.history.length - 1; at >= 0; at--) if (ref.history[at]!.updatedAt <= time) return ref.history[at];
  return undefined;
}

/**
 * A finished work order as an OpenLineage RunEvent: COMPLETE, FAIL or ABORT, with the inputs it
 * declared and the data of its lineage runs, each at the version it had when the order ended. The
 * run id is derived from workflow, work order and attempt, so exporting twice yields the same event.
 */
export function runEvent(state: HubState, input: { workflowId: string; workOrderId: string }, producer: string): OpenLineageRunEvent {
  const workflow = requireWorkflow(state, input.workflowId);
  const order = requireEntity(workflow.workOrders, input.workOrderId, 'work order', workflow.id);
  if (order.state !== 'completed' && order.state !== 'failed' && order.state !== 'cancelled') {
    throw new HubError('INVALID_TRANSITION', `work order ${order.id} is ${order.state}; only finished work orders have a run event`);
  }
  const facet = (schemaURL: string, fields: Record<string, unknown>) => ({ _producer: producer, _schemaURL: schemaURL, ...fields });
  const inputs = new Set(order.inputs);
  const outputs = new Set<string>();
  for (const run of Object.values(workflow.lineage)) {
    if (run.workOrderId !== order.id) continue;
    for (const id of run.inputs) inputs.add(id);
    for (const id of run.outputs) outputs.add(id);
  }
  const endedAt = order.endedAt ?? order.updatedAt;
  const dataset = (id: string) => {
    const ref = workflow.data[id]!;
    const facets: Record<string, ReturnType<typeof facet>> = {};
    // The version the run read or produced, not a later one: an export must describe the run whenever it is made.
    const seen = versionAt(ref, endedAt);
    if (seen) facets.version = facet(FACETS.version, { datasetVersion: seen.checksum ?? String(seen.version) });
    if (ref.description) facets.documentation = facet(FACETS.datasetDocumentation, { description: ref.description });
    return { ...datasetName(ref), facets };
  };
  const attempt = order.history.at(-1)?.number ?? order.attempts;
  const runFacets: Record<string, ReturnType<typeof facet>> = {
    parent: facet(FACETS.parent, { run: { runId: uuidFrom(`switchboard:workflow:${workflow.id}`) }, job: { namespace: JOB_NAMESPACE, name: workflow.id } }),
  };
  if (order.state === 'failed') runFacets.errorMessage = facet(FACETS.errorMessage, { message: order.error ?? 'failed', programmingLanguage: 'unknown' });
  const jobFacets: Record<string, ReturnType<typeof facet>> = {
    jobType: facet(FACETS.jobType, { processingType: 'BATCH', integration: 'SWITCHBOARD', jobType: 'TASK' }),
  };
  if (order.description) jobFacets.documentation = facet(FACETS.jobDocumentation, { description: order.description });
  return {
    eventType: EVENT_TYPES[order.state],
    eventTime: new Date(order.endedAt ?? order.updatedAt).toISOString(),
    run: { runId: uuidFrom(`switchboard:run:${workflow.id}:${order.id}:${attempt}`), facets: runFacets },
    job: { namespace: JOB_NAMESPACE, name: `${workflow.id}.${order.taskType}`, facets: jobFacets },
    // What one of its runs made and another read (an output derived from another) is no input of the order.
    inputs: [...inputs].filter((id) => !outputs.has(id) && Object.hasOwn(workflow.data, id)).map(dataset),
    outputs: [...outputs].filter((id) => Object.hasOwn(workflow.data, id)).map(dataset),
    producer,
    schemaURL: RUN_EVENT_SCHEMA_URL,
  };
}
