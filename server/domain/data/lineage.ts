import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { Transformation } from '../../../shared/schemas/lineage.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Actor } from '../machinery/actor.ts';
import { requireEntity, requireFreeId, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { versionOf } from '../machinery/state.ts';
import { touch } from '../workflows/workflows.ts';

type Fields = Pick<Transformation, 'operation' | 'inputs' | 'outputs' | 'recordedBy'> & Partial<Omit<Transformation, 'id'>> & { id?: string };

/** Stores a transformation; the caller has checked that its references exist. */
export function recordTransformation(t: CommandContext, workflowId: string, fields: Fields): Transformation {
  const id = fields.id ?? t.ctx.newId('run');
  const transformation: Transformation = {
    id,
    operation: fields.operation,
    description: fields.description ?? '',
    inputs: fields.inputs,
    outputs: fields.outputs,
    workOrderId: fields.workOrderId ?? null,
    agentId: fields.agentId ?? null,
    attempt: fields.attempt ?? null,
    startedAt: fields.startedAt ?? null,
    endedAt: fields.endedAt ?? t.ctx.now,
    status: fields.status ?? 'completed',
    error: fields.error ?? null,
    recordedBy: fields.recordedBy,
  };
  const workflow = requireWorkflow(t.state, workflowId);
  // Taken before the write: an index built now must not hold this run yet.
  const index = t.state.inventory.lineage(workflow);
  t.tx.set(workflowId, ['lineage', id], transformation);
  const recorded = workflow.lineage[id]!;
  t.tx.onUndo(index.add(recorded));
  return recorded;
}

/** Links inputs to outputs through an operation (control). Every reference must exist, or nothing changes. */
export function linkLineage(t: CommandContext, input: ParsedRequestOf<'control', 'lineage.link'>, actor: Actor) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  for (const id of [...input.inputs, ...input.outputs]) requireEntity(workflow.data, id, 'data reference', workflow.id);
  if (input.workOrderId !== undefined) requireEntity(workflow.workOrders, input.workOrderId, 'work order', workflow.id);
  const id = input.id ?? t.ctx.newId('link');
  requireFreeId(workflow.lineage, id, 'transformation');
  const item = recordTransformation(t, workflow.id, {
    id,
    operation: input.operation,
    description: input.description,
    inputs: [...new Set(input.inputs)],
    outputs: [...new Set(input.outputs)],
    workOrderId: input.workOrderId ?? null,
    agentId: input.agentId ?? null,
    recordedBy: actor.name,
  });
  touch(t, workflow.id);
  return { version: versionOf(t.state, workflow.id), item };
}

/**
 * Records the run of a work order that has just completed or failed, when it read or produced
 * data: its inputs (and what its outputs say they derive from) → the outputs of its last attempt.
 * An output derived from another output of that attempt is linked to it by a `derive` run of the
 * order instead: as an input of the order's run, that output would show as made from itself.
 * Called after the attempt ended, so the last history record is that attempt. Cost: O(its data).
 */
export function recordRun(t: CommandContext, order: WorkOrder, state: 'completed' | 'failed', error: string | undefined): void {
  const workflow = requireWorkflow(t.state, order.workflowId);
  const last = order.history.at(-1) ?? null;
  const outputs = last ? order.outputs.filter((id) => workflow.data[id]?.provenance.attempt === last.number) : [];
  const made = new Set(outputs);
  const inputs = new Set(order.inputs.filter((id) => Object.hasOwn(workflow.data, id)));
  const derivations: Array<{ output: string; sources: string[] }> = [];
  for (const id of outputs) {
    const sources: string[] = [];
    for (const source of workflow.data[id]!.provenance.derivedFrom) {
      if (made.has(source)) sources.push(source);
      else inputs.add(source);
    }
    if (sources.length > 0) derivations.push({ output: id, sources });
  }
  if (inputs.size === 0 && outputs.length === 0) return;
  const run = {
    workOrderId: order.id,
    agentId: last?.agentId ?? null,
    attempt: last?.number ?? null,
    startedAt: last?.startedAt ?? order.startedAt,
    status: state,
    error: state === 'failed' ? (error ?? order.error) : null,
    recordedBy: 'hub',
  };
  recordTransformation(t, workflow.id, { ...run, operation: order.taskType, description: order.description, inputs: [...inputs], outputs });
  for (const { output, sources } of derivations) recordTransformation(t, workflow.id, { ...run, operation: 'derive', inputs: sources, outputs: [output] });
}
