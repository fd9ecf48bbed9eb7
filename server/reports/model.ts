import type { Agent } from '../../shared/schemas/agent.ts';
import type { Kpi } from '../../shared/schemas/kpis.ts';
import type { Objective } from '../../shared/schemas/objectives.ts';
import type { Step } from '../../shared/schemas/steps.ts';
import type { WorkflowSummary } from '../../shared/schemas/summary.ts';
import type { WorkOrder } from '../../shared/schemas/work-order.ts';
import type { StageProgress, Workflow } from '../../shared/schemas/workflow.ts';
import { summarize } from '../domain/workflows/summary.ts';
import { dataReferencesOf, type DataReferenceRow } from './data-inventory.ts';
import { compareText, sortedByCreation } from './ordering.ts';
import { agentPerformance, dataInventoryStats, workOrderStats, type AgentPerformance, type DataInventoryStats, type WorkOrderStats } from './statistics.ts';
import { attemptBars, timelineEvents, type AttemptBar, type Bounded, type TimelineEvent } from './timeline.ts';

/** What a report is made from: one workflow at one version, and the hub-wide agent pool. */
export interface ReportInput {
  workflow: Workflow;
  /** The version of the workflow document this report describes. */
  version: number;
  /** The hub-wide agent pool (may be empty); read only for agent records that lack agentType and capabilities. */
  agents: Record<string, Agent>;
  /** Who asked for the report (a token name, "auto-documentation"); printed as given. */
  generatedBy?: string;
}

/** Bounds of the human-readable formats; the JSON report is always complete. */
export const REPORT_LIMITS = {
  /** Work order rows in Markdown and HTML (the most recent ones). */
  workOrders: 500,
  /** Events of the execution timeline (the latest ones). */
  timelineEvents: 500,
  /** Attempt bars in the HTML timeline chart (the latest ones). */
  attemptBars: 60,
} as const;

/** Everything the renderers need, computed once, sorted and bounded. */
export interface ReportModel {
  workflow: Workflow;
  version: number;
  generatedBy: string | null;
  /** The end of the record: "now" for durations of a running workflow, from its last change. */
  asOf: number;
  summary: WorkflowSummary;
  objectives: Objective[];
  kpis: Kpi[];
  stages: StageProgress[];
  steps: Step[];
  workOrderStats: WorkOrderStats;
  /** The most recent work orders, oldest first. */
  workOrders: Bounded<WorkOrder>;
  agents: AgentPerformance[];
  data: DataReferenceRow[];
  dataStats: DataInventoryStats;
  timeline: Bounded<TimelineEvent>;
  attempts: Bounded<AttemptBar>;
}

/** Puts `items` in the order of `ids` (the summary lists record values in key order). */
function inOrder<T extends { id: string }>(items: T[], ids: string[]): T[] {
  const byId = new Map(items.map((item) => [item.id, item]));
  return ids.map((id) => byId.get(id)!);
}

/** Computes the report model: summary, statistics, ordered lists and bounded slices. */
export function buildReportModel(input: ReportInput): ReportModel {
  const { workflow, version } = input;
  // Never the wall clock: the same version must render the same bytes.
  const asOf = workflow.endedAt ?? workflow.updatedAt;
  const objectives = sortedByCreation(workflow.objectives);
  const kpis = sortedByCreation(workflow.kpis);
  const stages = Object.values(workflow.stages).sort((a, b) => a.startedAt - b.startedAt || compareText(a.name, b.name));
  const orders = sortedByCreation(workflow.workOrders);
  const raw = summarize(workflow, version, asOf);
  const stageOrder = new Map(stages.map((stage, index) => [stage.name, index]));
  const summary: WorkflowSummary = {
    ...raw,
    stages: [...raw.stages].sort((a, b) => stageOrder.get(a.name)! - stageOrder.get(b.name)!),
    objectives: { ...raw.objectives, items: inOrder(raw.objectives.items, objectives.map((o) => o.id)) },
    kpis: { ...raw.kpis, items: inOrder(raw.kpis.items, kpis.map((k) => k.id)) },
  };
  const data = dataReferencesOf(workflow);
  return {
    workflow,
    version,
    generatedBy: input.generatedBy ?? null,
    asOf,
    summary,
    objectives,
    kpis,
    stages,
    steps: sortedByCreation(workflow.steps),
    workOrderStats: workOrderStats(orders),
    workOrders: { total: orders.length, items: orders.slice(Math.max(0, orders.length - REPORT_LIMITS.workOrders)) },
    agents: agentPerformance(workflow, input.agents),
    data,
    dataStats: dataInventoryStats(data),
    timeline: timelineEvents(workflow, REPORT_LIMITS.timelineEvents),
    attempts: attemptBars(orders, asOf, REPORT_LIMITS.attemptBars),
  };
}
