import { HubError } from '../../../shared/errors.ts';
import type { ParsedRequestOf } from '../../../shared/contract.ts';
import { isRemoteUri, type DataReference, type DataReferenceSpec, type DataStatus, type DataVersion } from '../../../shared/schemas/data.ts';
import type { Assignment, WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import type { Actor } from '../machinery/actor.ts';
import { requireEntity, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { recordTransformation } from './lineage.ts';
import type { ReferenceIndex } from './reference-index.ts';
import { versionOf } from '../machinery/state.ts';
import { touch } from '../workflows/workflows.ts';

/** What the hub saw on disk for a local path before the command ran. */
export interface Observation {
  exists: boolean;
  /** null for a directory or a missing file. */
  size: number | null;
  checksum: string | null;
}

/** A spec whose path the transport has normalised, with what it observed (null: not checked). */
export type PreparedSpec = DataReferenceSpec & { observed: Observation | null };

/** The attempt that registers data, for provenance. */
export interface Producer {
  agentId: string;
  workOrderId: string;
  attempt: number;
}

/** `observedPath`: the path the hub looked at for `observed` (the recorded one, when the update names none). */
type UpdateInput = ParsedRequestOf<'control', 'data.update'> & { observed: Observation | null; observedPath?: string };
type Declared = { size?: number | undefined; checksum?: string | undefined };

/** The reference, or NOT_FOUND. */
export function requireData(workflow: Workflow, dataId: string): DataReference {
  return requireEntity(workflow.data, dataId, 'data reference', workflow.id);
}

/** The declared data type, else the file extension, else `unknown`. */
function dataTypeOf(path: string, declared: string | undefined): string {
  if (declared) return declared;
  const name = path.split(/[?#]/)[0]!.split(/[\\/]/).pop() ?? '';
  const dot = name.lastIndexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot + 1).toLowerCase().slice(0, 100) : 'unknown';
}

/**
 * Status, size and checksum from what the hub observed and what the caller declared. A declared
 * checksum that the file does not match is kept as the recorded one and the status is `changed`.
 */
function measure(declared: Declared, observed: Observation | null): { status: DataStatus; size: number | null; checksum: string | null } {
  if (!observed || !observed.exists) {
    return { status: observed ? 'missing' : 'registered', size: declared.size ?? null, checksum: declared.checksum ?? null };
  }
  if (declared.checksum && observed.checksum && declared.checksum !== observed.checksum) {
    return { status: 'changed', size: declared.size ?? observed.size, checksum: declared.checksum };
  }
  return { status: 'valid', size: observed.size, checksum: observed.checksum ?? declared.checksum ?? null };
}

/** The reference as it was, for its history. */
function snapshotOf(ref: DataReference): DataVersion {
  const { version, path, size, checksum, status, updatedAt, updatedBy } = ref;
  return { version, path, size, checksum, status, updatedAt, updatedBy };
}

/** Moves the current version into the bounded history and applies `fields` as the next version. */
function nextVersion(t: CommandContext, workflow: Workflow, ref: DataReference, fields: Partial<DataReference>, actor: Actor): void {
  const path = ['data', ref.id];
  t.tx.append(workflow.id, [...path, 'history'], snapshotOf(ref));
  // A loop, not one removal: the limit may have been lowered since the history grew (a restart with a smaller one).
  while (ref.history.length > t.ctx.settings.dataHistoryLimit) t.tx.remove(workflow.id, [...path, 'history', 0]);
  t.tx.assign(workflow.id, path, { ...fields, version: ref.version + 1, updatedAt: t.ctx.now, updatedBy: actor.name });
}

/** Files a reference just added or changed in its workflow's index; the command's rollback undoes that too. */
function refile(t: CommandContext, index: ReferenceIndex, ref: DataReference): void {
  t.tx.onUndo(index.file(ref));
}

/** True when a later attempt of the work order that produced `existing` registers it again. */
function isRetryOf(existing: DataReference, producer: Producer | undefined): boolean {
  const origin = existing.provenance;
  return !!producer && origin.workOrderId === producer.workOrderId && (origin.attempt ?? 0) < producer.attempt;
}

/**
 * Refuses (CONFLICT) a request whose references derive from one another around a loop: each is
 * new (or a new version), so none can have been made from another that was made from it. A new id
 * cannot be named by a reference before the request, so only the request's own derivedFrom links
 * are followed, unless it makes a new version of one already there (a retry re-registering its
 * output): then `earlier` gives the derivedFrom of the references before it, walked as well.
 */
function requireNoDerivationLoop(specs: ReadonlyArray<{ id: string; derivedFrom: readonly string[] }>, earlier?: (id: string) => readonly string[] | undefined): void {
  const inRequest = new Map(specs.map((spec) => [spec.id, spec.derivedFrom]));
  const sourcesOf = (id: string) => inRequest.get(id) ?? earlier?.(id);
  // 1: on the path being walked, 2: walked, and no loop through it.
  const marks = new Map<string, 1 | 2>();
  for (const spec of specs) {
    if (marks.has(spec.id)) continue;
    // An explicit stack, not recursion: a request of 1,000 references may be one chain.
    const stack: Array<{ id: string; next: number }> = [{ id: spec.id, next: 0 }];
    marks.set(spec.id, 1);
    while (stack.length > 0) {
      const top = stack.at(-1)!;
      const source = sourcesOf(top.id)![top.next++];
      if (source === undefined) {
        marks.set(top.id, 2);
        stack.pop();
      } else if (marks.get(source) === 1) {
        const loop = [...stack.slice(stack.findIndex((entry) => entry.id === source)).map((entry) => entry.id), source];
        throw new HubError('CONFLICT', `data references derive from one another around a loop: ${loop.join(' ← ')}`);
      } else if (sourcesOf(source) !== undefined && !marks.has(source)) {
        marks.set(source, 1);
        stack.push({ id: source, next: 0 });
      }
    }
  }
}

/**
 * Registers references, all or none. An id already taken is CONFLICT (nothing is overwritten),
 * except that a later attempt of the producing work order re-registering its own output makes a
 * new version, because handlers may run more than once. derivedFrom must name references of the
 * workflow or of this batch; a control client's derived reference is linked by a `derive` run.
 */
export function registerReferences(t: CommandContext, workflowId: string, specs: PreparedSpec[], actor: Actor, producer?: Producer): DataReference[] {
  const workflow = requireWorkflow(t.state, workflowId);
  const withIds = specs.map((spec) => ({ ...spec, id: spec.id ?? t.ctx.newId('data') }));
  const ids = new Set<string>();
  for (const spec of withIds) {
    if (ids.has(spec.id)) throw new HubError('CONFLICT', `data reference ${spec.id} appears twice in the request`);
    if (Object.hasOwn(workflow.data, spec.id) && !isRetryOf(workflow.data[spec.id]!, producer)) {
      throw new HubError('CONFLICT', `data reference ${spec.id} already exists; use data.update to make a new version`);
    }
    ids.add(spec.id);
  }
  for (const spec of withIds) {
    for (const source of spec.derivedFrom) {
      if (source === spec.id) throw new HubError('CONFLICT', `data reference ${spec.id} cannot derive from itself`);
      if (!ids.has(source) && !Object.hasOwn(workflow.data, source)) {
        throw new HubError('NOT_FOUND', `data reference ${source} (derivedFrom of ${spec.id}) does not exist in workflow ${workflowId}`);
      }
    }
  }
  const newVersions = withIds.some((spec) => Object.hasOwn(workflow.data, spec.id));
  requireNoDerivationLoop(withIds, newVersions ? (id) => (Object.hasOwn(workflow.data, id) ? workflow.data[id]!.provenance.derivedFrom : undefined) : undefined);
  // Taken before the first write: an index built now must not hold this command's changes yet.
  const index = t.state.inventory.references(workflow);
  const now = t.ctx.now;
  for (const spec of withIds) {
    const { status, size, checksum } = measure(spec, spec.observed);
    const content = {
      path: spec.path,
      location: isRemoteUri(spec.path) ? ('uri' as const) : ('file' as const),
      description: spec.description,
      dataType: dataTypeOf(spec.path, spec.dataType),
      size,
      checksum,
      tags: [...new Set(spec.tags)],
      metadata: spec.metadata,
      status,
      validatedAt: spec.observed ? now : null,
    };
    const existing = workflow.data[spec.id];
    if (existing && producer) {
      // What the retry says it was made from: its order's lineage run links this version to that.
      const provenance = {
        ...existing.provenance,
        registeredBy: { role: actor.role, name: actor.name },
        agentId: producer.agentId,
        attempt: producer.attempt,
        derivedFrom: [...new Set(spec.derivedFrom)],
      };
      nextVersion(t, workflow, existing, { ...content, provenance }, actor);
      refile(t, index, existing);
      continue;
    }
    const ref: DataReference = {
      id: spec.id,
      ...content,
      version: 1,
      history: [],
      createdAt: now,
      updatedAt: now,
      updatedBy: actor.name,
      provenance: {
        registeredBy: { role: actor.role, name: actor.name },
        agentId: producer?.agentId ?? null,
        workOrderId: producer?.workOrderId ?? null,
        attempt: producer?.attempt ?? null,
        source: producer ? 'produced' : spec.derivedFrom.length ? 'derived' : 'external',
        derivedFrom: [...new Set(spec.derivedFrom)],
      },
    };
    t.tx.set(workflowId, ['data', ref.id], ref);
    const uncount = t.state.work.catalogs.dataAdded(workflowId);
    if (uncount) t.tx.onUndo(uncount);
    refile(t, index, workflow.data[ref.id]!);
    if (producer) t.tx.append(workflowId, ['workOrders', producer.workOrderId, 'outputs'], ref.id);
  }
  // Linked once all exist: a batch may derive from references that come later in it.
  if (!producer) {
    for (const spec of withIds) {
      if (spec.derivedFrom.length === 0) continue;
      recordTransformation(t, workflowId, { operation: 'derive', inputs: [...new Set(spec.derivedFrom)], outputs: [spec.id], recordedBy: actor.name });
    }
  }
  touch(t, workflowId);
  return withIds.map((spec) => workflow.data[spec.id]!);
}

/** Makes a new version of a reference; the previous one joins its history. */
export function updateReference(t: CommandContext, input: UpdateInput, actor: Actor) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  const ref = requireData(workflow, input.dataId);
  if (input.expectedVersion !== undefined && input.expectedVersion !== ref.version) {
    throw new HubError('CONFLICT', `data reference ${ref.id} is at version ${ref.version}, not ${input.expectedVersion}`);
  }
  const index = t.state.inventory.references(workflow);
  const path = input.path ?? ref.path;
  // Looked at before this command ran: another update may have moved the reference meanwhile, and what was seen is not of its path.
  if (input.observed && input.observedPath !== undefined && input.observedPath !== path) {
    throw new HubError('CONFLICT', `data reference ${ref.id} moved to ${path} while ${input.observedPath} was being read; retry`);
  }
  const measured = measure(input, input.observed);
  // Unobserved content of the same path keeps its recorded measurements unless new ones are declared.
  if (!input.observed && path === ref.path) {
    measured.size = input.size ?? ref.size;
    measured.checksum = input.checksum ?? ref.checksum;
  }
  const fields: Partial<DataReference> = {
    ...measured,
    path,
    location: isRemoteUri(path) ? 'uri' : 'file',
    validatedAt: input.observed ? t.ctx.now : ref.validatedAt,
  };
  if (input.description !== undefined) fields.description = input.description;
  if (input.dataType !== undefined) fields.dataType = input.dataType;
  if (input.tags !== undefined) fields.tags = [...new Set(input.tags)];
  if (input.metadata !== undefined) fields.metadata = input.metadata;
  nextVersion(t, workflow, ref, fields, actor);
  refile(t, index, ref);
  touch(t, workflow.id);
  return { version: versionOf(t.state, workflow.id), item: ref };
}

/**
 * Re-checks a local file against the recorded checksum: valid, missing or changed. A reference
 * recorded without a checksum (missing before, or unchecked) takes the measured one.
 */
export function validateReference(t: CommandContext, input: { workflowId: string; dataId: string; version: number; observed: Observation }) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  const ref = requireData(workflow, input.dataId);
  if (ref.version !== input.version) throw new HubError('CONFLICT', `data reference ${ref.id} changed while it was being validated; retry`);
  const index = t.state.inventory.references(workflow);
  const seen = input.observed;
  const fields: Partial<DataReference> = { validatedAt: t.ctx.now };
  if (!seen.exists) fields.status = 'missing';
  else if (ref.checksum === null) Object.assign(fields, { status: 'valid', size: seen.size, checksum: seen.checksum });
  else fields.status = seen.checksum === null || seen.checksum === ref.checksum ? 'valid' : 'changed';
  t.tx.assign(workflow.id, ['data', ref.id], fields);
  refile(t, index, ref);
  touch(t, workflow.id);
  return { version: versionOf(t.state, workflow.id), item: ref };
}

/** The inputs of an order as they are now, for its assignment. */
export function assignmentInputs(workflow: Workflow, order: WorkOrder): Assignment['inputs'] {
  const inputs: Assignment['inputs'] = [];
  for (const id of order.inputs) {
    const ref = workflow.data[id];
    if (ref) inputs.push({ id, path: ref.path, dataType: ref.dataType, version: ref.version, checksum: ref.checksum });
  }
  return inputs;
}
