import type { ParsedRequestOf } from '../../../shared/contract.ts';
import type { Kpi } from '../../../shared/schemas/kpis.ts';
import { versionOf } from '../machinery/state.ts';
import { requireEntity, requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { addToWorkflow, touch } from './workflows.ts';

/** Whether `value` meets `target` in the KPI's direction. */
export function meetsTarget(kpi: Pick<Kpi, 'direction' | 'target'>, value: number | null): boolean {
  if (value === null) return false;
  return kpi.direction === 'higher' ? value >= kpi.target : value <= kpi.target;
}

/** Adds a KPI with no value yet. */
export function addKpi(t: CommandContext, input: ParsedRequestOf<'control', 'kpi.add'>) {
  return addToWorkflow(t, input.workflowId, 'kpis', { id: input.id, kind: 'KPI', prefix: 'kpi' }, (id, now) => ({
    id,
    name: input.name,
    description: input.description,
    target: input.target,
    unit: input.unit,
    direction: input.direction,
    current: null,
    history: [],
    samples: 0,
    met: false,
    createdAt: now,
    updatedAt: now,
  }));
}

/** Records a value: it becomes current, joins the bounded history, and `met` is re-evaluated. */
export function recordKpi(t: CommandContext, input: ParsedRequestOf<'control', 'kpi.record'>) {
  const workflow = requireWorkflow(t.state, input.workflowId);
  const kpi = requireEntity(workflow.kpis, input.kpiId, 'KPI', workflow.id);
  const path = ['kpis', kpi.id];
  t.tx.append(workflow.id, [...path, 'history'], { value: input.value, at: t.ctx.now });
  // A loop, not one removal: the limit may have been lowered since the history grew (a restart with a smaller one).
  while (kpi.history.length > t.ctx.settings.kpiHistoryLimit) t.tx.remove(workflow.id, [...path, 'history', 0]);
  t.tx.assign(workflow.id, path, {
    current: input.value,
    samples: kpi.samples + 1,
    met: meetsTarget(kpi, input.value),
    updatedAt: t.ctx.now,
  });
  touch(t, workflow.id);
  return { version: versionOf(t.state, workflow.id), item: kpi };
}
