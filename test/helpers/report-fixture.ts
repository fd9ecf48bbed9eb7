import { AddKpiInput, RecordKpiInput } from '../../shared/schemas/kpis.ts';
import { AddObjectiveInput, UpdateObjectiveInput } from '../../shared/schemas/objectives.ts';
import { AddStepInput, CompleteStepInput, FailStepInput } from '../../shared/schemas/steps.ts';
import { CreateWorkOrderInput, CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput, UpdateProgressInput, type Workflow } from '../../shared/schemas/workflow.ts';
import type { ReportInput } from '../../server/reports/report.ts';
import { domain } from './domain.ts';

type Domain = ReturnType<typeof domain>;

/** User text that tries to break out of Markdown tables and HTML. */
export const HOSTILE = '<script>alert(1)</script> | pipe';

const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

/** Drives the current attempt of an order as its agent: accept, then optionally finish it. */
export function work(d: Domain, workflowId: string, workOrderId: string, finish: 'complete' | 'fail' | 'fail-final' | 'none' = 'complete') {
  const attempt = d.state.workflows.get(workflowId)!.workOrders[workOrderId]!.attempt!;
  const ref = { workflowId, workOrderId, attemptToken: attempt.token };
  d.run('offer.answer', { ...ref, accept: true }, asAgent(attempt.agentId));
  d.advance(250);
  if (finish === 'complete') d.run('task.complete', { ...ref, result: { rows: 10 } }, asAgent(attempt.agentId));
  if (finish === 'fail' || finish === 'fail-final') {
    d.run('task.fail', { ...ref, error: `disk full ${HOSTILE}`, retryable: finish === 'fail' }, asAgent(attempt.agentId));
  }
}

/** A workflow built by real domain commands: objectives, KPIs, stages, steps, agents, work orders. */
export function realisticWorkflow() {
  const d = domain();
  const workflowId = d.run(
    'workflow.create',
    CreateWorkflowInput.parse({ id: 'customer-insights', userQuery: `Analyze customer data from https://example.com/data.csv ${HOSTILE}\nthen report` }),
  ).reply.workflow.id;
  d.advance(100);
  d.run('workflow.start', { workflowId });

  d.run('objective.add', AddObjectiveInput.parse({ workflowId, id: 'analysis', name: 'Data analysis', target: '100% completion', priority: 'high' }));
  d.run('objective.add', AddObjectiveInput.parse({ workflowId, id: 'hostile', name: `Sneaky ${HOSTILE}`, description: '0'.repeat(64) }));
  d.run('objective.update', UpdateObjectiveInput.parse({ workflowId, objectiveId: 'analysis', status: 'in_progress', progress: 50 }));
  d.run('kpi.add', AddKpiInput.parse({ workflowId, id: 'speed', name: 'Processing speed', target: 1000, unit: 'records/minute' }));
  d.run('kpi.add', AddKpiInput.parse({ workflowId, id: 'errors', name: 'Error rate', target: 0.5, unit: '%', direction: 'lower' }));
  d.run('kpi.record', RecordKpiInput.parse({ workflowId, kpiId: 'speed', value: 1200 }));
  d.run('kpi.record', RecordKpiInput.parse({ workflowId, kpiId: 'errors', value: 2.25 }));

  d.advance(100);
  d.run('workflow.progress', UpdateProgressInput.parse({ workflowId, stage: 'loading', percentage: 100 }));
  d.run('workflow.progress', UpdateProgressInput.parse({ workflowId, stage: 'analysis', percentage: 40 }));
  d.run('step.add', AddStepInput.parse({ workflowId, id: 'load', name: 'Load CSV', start: true }));
  d.advance(500);
  d.run('step.complete', CompleteStepInput.parse({ workflowId, stepId: 'load', result: { rows: 1000 } }));
  d.run('step.add', AddStepInput.parse({ workflowId, id: 'validate', name: 'Validate', start: true }));
  d.advance(50);
  d.run('step.fail', FailStepInput.parse({ workflowId, stepId: 'validate', error: `bad row ${HOSTILE}` }));

  d.register('csv-agent', { agentType: 'loader', capabilities: ['csv'] });
  d.register('stats-agent', { agentType: 'analyst', capabilities: ['stats'] });
  const order = (spec: Record<string, unknown>) => d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, ...spec }));
  order({ id: 'load-data', taskType: 'data_processing', description: 'Load the CSV', requirements: ['csv'], priority: 'high' });
  work(d, workflowId, 'load-data', 'complete');
  d.advance(10);
  order({ id: 'analyze', taskType: 'analysis', requirements: ['stats'], maxAttempts: 2 });
  work(d, workflowId, 'analyze', 'fail');
  d.advance(1_000);
  d.run('hub.sweep', {});
  work(d, workflowId, 'analyze', 'complete');
  d.advance(10);
  order({ id: 'clean', taskType: 'cleaning', requirements: ['csv'] });
  work(d, workflowId, 'clean', 'fail-final');
  d.advance(10);
  order({ id: 'running', taskType: 'data_processing', requirements: ['csv'] });
  work(d, workflowId, 'running', 'none');
  order({ id: 'render-pdf', taskType: `render ${HOSTILE}`, requirements: ['pdf'] });
  d.advance(10);

  return { d, workflowId, input: (): ReportInput => inputOf(d, workflowId) };
}

/** The report input for the workflow as it stands now. */
export function inputOf(d: Domain, workflowId: string, generatedBy?: string): ReportInput {
  const input: ReportInput = { workflow: structuredClone(d.state.workflows.get(workflowId)!), version: d.state.versions.get(workflowId)!, agents: structuredClone(d.state.agents ?? {}) };
  if (generatedBy !== undefined) input.generatedBy = generatedBy;
  return input;
}

/** Data references as the inventory change will add them to the document (not typed yet). */
export function withData(workflow: Workflow, count = 3): Workflow {
  const data: Record<string, unknown> = {};
  for (let i = count; i >= 1; i--) {
    data[`ref-${i}`] = {
      id: `ref-${i}`,
      path: i === 2 ? `data/${HOSTILE}.csv` : `data/part-${i}.csv`,
      description: i === 1 ? 'Customer dataset' : `Part ${i}`,
      dataType: 'csv',
      size: 1024 * i,
      checksum: `sha256:${String(i).repeat(8)}`,
      tags: ['customers', `part${i}`],
      status: i === 3 ? 'missing' : 'valid',
      createdAt: 2_000 + i,
    };
  }
  return { ...workflow, data } as Workflow;
}

/** A copy of a JSON value with the keys of every object in reverse order. */
export function reverseKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reverseKeys) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)])) as T;
}

/** A workflow with `count` work orders (created in batches of 1000), of which `completed` ran to completion. */
export function largeWorkflow(count: number, completed: number) {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'bulk', userQuery: 'Process many files' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  for (let start = 0; start < count; start += 1000) {
    const orders = Array.from({ length: Math.min(1000, count - start) }, (_, i) => ({ id: `job-${String(start + i + 1).padStart(5, '0')}`, taskType: 'convert' }));
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders }));
    d.advance(1);
  }
  d.register('bulk-agent', { agentType: 'converter', maxConcurrentTasks: 1 });
  for (let i = 0; i < completed; i++) {
    const offered = Object.values(d.state.workflows.get(workflowId)!.workOrders).find((o) => o.state === 'offered')!;
    work(d, workflowId, offered.id, 'complete');
  }
  return { d, workflowId };
}
