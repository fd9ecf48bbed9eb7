import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contract } from '../../shared/contract.ts';
import { DataReferenceSpec } from '../../shared/schemas/data.ts';
import type { CommandInput, CommandType } from '../../server/domain/machinery/commands.ts';
import { domain } from '../helpers/domain.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';

const ID = 'wf-done';
const parse = (event: keyof typeof contract.control, input: object) => contract.control[event].request.parse({ workflowId: ID, ...input });
const spec = (id: string) => ({ ...DataReferenceSpec.parse({ id, path: `s3://lake/${id}` }), observed: null });

/** One request of each kind a control client can send about a workflow, with its inputs. */
const COMMANDS: Array<[CommandType, () => object]> = [
  ['workflow.start', () => ({ workflowId: ID })],
  ['workflow.complete', () => ({ workflowId: ID })],
  ['workflow.fail', () => ({ workflowId: ID, reason: 'late' })],
  ['workflow.cancel', () => ({ workflowId: ID })],
  ['workflow.pause', () => ({ workflowId: ID, reason: 'late' })],
  ['workflow.resume', () => ({ workflowId: ID })],
  ['workflow.progress', () => parse('workflow.progress', { stage: 'load', percentage: 50 })],
  ['workflow.autoAssign', () => ({ workflowId: ID })],
  ['step.add', () => parse('step.add', { name: 'late step' })],
  ['step.start', () => ({ workflowId: ID, stepId: 'waiting' })],
  ['step.complete', () => parse('step.complete', { stepId: 'running' })],
  ['step.fail', () => ({ workflowId: ID, stepId: 'running', error: 'late' })],
  ['objective.add', () => parse('objective.add', { name: 'late goal' })],
  ['objective.update', () => parse('objective.update', { objectiveId: 'goal', progress: 80 })],
  ['kpi.add', () => parse('kpi.add', { name: 'late kpi', target: 1 })],
  ['kpi.record', () => ({ workflowId: ID, kpiId: 'speed', value: 3 })],
  ['workOrder.create', () => parse('workOrder.create', { taskType: 't' })],
  ['workOrder.createMany', () => parse('workOrder.createMany', { orders: [{ taskType: 't' }] })],
  ['workOrder.cancel', () => ({ workflowId: ID, workOrderId: 'job' })],
  ['workOrder.retry', () => ({ workflowId: ID, workOrderId: 'job' })],
  ['data.register', () => ({ workflowId: ID, items: [spec('late-data')] })],
  ['data.update', () => ({ ...parse('data.update', { dataId: 'raw', description: 'v2' }), observed: null })],
  ['data.validate', () => ({ workflowId: ID, dataId: 'raw', version: 1, observed: { exists: true, size: 1, checksum: null } })],
  ['lineage.link', () => parse('lineage.link', { operation: 'copy', inputs: ['raw'], outputs: ['raw'] })],
];

/** A workflow with a step waiting and one running, an objective, a KPI, data and a work order, ended by `end`. */
function finished(end: 'workflow.complete' | 'workflow.fail' | 'workflow.cancel') {
  const d = domain();
  d.run('workflow.create', contract.control['workflow.create'].request.parse({ id: ID, userQuery: 'q' }));
  d.run('workflow.start', { workflowId: ID });
  d.run('step.add', parse('step.add', { id: 'waiting', name: 'w' }) as never);
  d.run('step.add', parse('step.add', { id: 'running', name: 'r', start: true }) as never);
  d.run('objective.add', parse('objective.add', { id: 'goal', name: 'g' }) as never);
  d.run('kpi.add', parse('kpi.add', { id: 'speed', name: 's', target: 1 }) as never);
  d.run('data.register', { workflowId: ID, items: [spec('raw')] });
  d.run('workOrder.create', parse('workOrder.create', { id: 'job', taskType: 't' }) as never);
  d.run(end, { workflowId: ID, reason: 'over' } as never);
  return d;
}

/** The commands PROTOCOL.md says a finished workflow refuses. */
function documentedRefusals(): string[] {
  const protocol = readFileSync(new URL('../../PROTOCOL.md', import.meta.url), 'utf8');
  const start = protocol.indexOf('**A finished workflow**');
  const paragraph = protocol.slice(start, protocol.indexOf('It still accepts', start));
  expect(start, 'PROTOCOL.md lists what a finished workflow refuses').toBeGreaterThan(-1);
  return [...paragraph.matchAll(/`([a-zA-Z]+\.[a-zA-Z]+)`/g)].map((m) => m[1]!).sort();
}

describe('a finished workflow (domain)', () => {
  for (const end of ['workflow.complete', 'workflow.fail', 'workflow.cancel'] as const) {
    it(`refuses new work, new entities and lifecycle changes after ${end} with INVALID_TRANSITION, changing nothing, as PROTOCOL.md lists`, () => {
      const refused: string[] = [];
      for (const [type, input] of COMMANDS) {
        const d = finished(end);
        const before = structuredClone(d.state.workflows.get(ID));
        const version = d.state.versions.get(ID);
        const code = codeOf(() => d.run(type, input() as CommandInput<typeof type>));
        if (code === undefined) continue;
        expect(code, type).toBe('INVALID_TRANSITION');
        expect(d.state.workflows.get(ID), type).toEqual(before);
        expect(d.state.versions.get(ID), type).toBe(version);
        refused.push(type);
      }
      expect(refused.sort()).toEqual(
        [
          'workflow.start', 'workflow.complete', 'workflow.fail', 'workflow.cancel', 'workflow.progress',
          'step.add', 'objective.add', 'kpi.add', 'workOrder.create', 'workOrder.createMany', 'workOrder.cancel',
          'workOrder.retry', 'workflow.pause', 'workflow.resume',
        ].sort(),
      );
      expect(documentedRefusals()).toEqual(refused.sort());
    });
  }
});
