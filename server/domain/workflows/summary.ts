import type { WorkflowSummary } from '../../../shared/schemas/summary.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { ObjectiveStatus } from '../../../shared/schemas/objectives.ts';
import { orderProgressOf, progressSource } from './order-progress.ts';

/** The equivalent of get_workflow_summary(): status, durations, counts, progress, objectives and KPIs. */
export function summarize(workflow: Workflow, version: number, now: number): WorkflowSummary {
  const steps = { total: 0, pending: 0, running: 0, completed: 0, failed: 0, totalDurationMs: 0 };
  for (const step of Object.values(workflow.steps)) {
    steps.total++;
    steps[step.status]++;
    steps.totalDurationMs += step.durationMs ?? 0;
  }
  const objectiveCounts = Object.fromEntries(ObjectiveStatus.options.map((s) => [s, 0])) as Record<ObjectiveStatus, number>;
  const objectives = Object.values(workflow.objectives);
  for (const objective of objectives) objectiveCounts[objective.status]++;
  const kpis = Object.values(workflow.kpis);
  return {
    id: workflow.id,
    version,
    userQuery: workflow.userQuery,
    status: workflow.status,
    failureReason: workflow.failureReason,
    createdAt: workflow.createdAt,
    startedAt: workflow.startedAt,
    endedAt: workflow.endedAt,
    // Never below 0: the wall clock may have stepped back since the start.
    durationMs: workflow.startedAt === null ? null : Math.max(0, (workflow.endedAt ?? now) - workflow.startedAt),
    progress: workflow.progress,
    progressFrom: progressSource(workflow),
    orderProgress: orderProgressOf(workflow),
    unservable: workflow.unservable ?? 0,
    paused: workflow.paused ?? null,
    workOrderCounts: { ...workflow.workOrderCounts },
    stages: Object.values(workflow.stages).map((s) => ({ name: s.name, progress: s.progress, completed: s.completedAt !== null })),
    steps,
    objectives: {
      total: objectives.length,
      ...objectiveCounts,
      items: objectives.map(({ id, name, status, progress, target }) => ({ id, name, status, progress, target })),
    },
    kpis: {
      total: kpis.length,
      met: kpis.filter((k) => k.met).length,
      items: kpis.map(({ id, name, current, target, unit, direction, met }) => ({ id, name, current, target, unit, direction, met })),
    },
  };
}
