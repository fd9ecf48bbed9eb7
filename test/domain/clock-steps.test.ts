import { describe, expect, it } from 'vitest';
import { contract } from '../../shared/contract.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { summarize } from '../../server/domain/workflows/summary.ts';
import { workOrderStats } from '../../server/reports/statistics.ts';
import { timelineChart } from '../../server/reports/svg-charts.ts';
import { domain } from '../helpers/domain.ts';

// Timestamps are the wall clock's, which an operator or NTP may set back mid-task: a duration
// between two of them is then negative, and is counted as 0 wherever the hub keeps or shows one.

const asAgent = (agentId: string) => ({ role: 'agent' as const, name: agentId, agentId });

describe('a wall clock stepped back mid-task (domain)', () => {
  it('records no negative duration: the agent’s busyMs and avgMs, the step’s durationMs and the summary’s durationMs are 0, and the report counts the attempt as 0 ms', () => {
    const d = domain();
    d.advance(600_000);
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'clock set back' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('step.add', contract.control['step.add'].request.parse({ workflowId, id: 's', name: 'step', start: true }) as never);
    d.register('w');
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't' }));
    const attempt = d.state.workflows.get(workflowId)!.workOrders.job!.attempt!;
    d.run('task.progress', { workflowId, workOrderId: 'job', attemptToken: attempt.token, progress: 10 }, asAgent('w'));

    d.advance(-600_000);
    d.run('task.complete', { workflowId, workOrderId: 'job', attemptToken: attempt.token, result: 'done' }, asAgent('w'));
    d.run('step.complete', contract.control['step.complete'].request.parse({ workflowId, stepId: 's' }) as never);

    const workflow = d.state.workflows.get(workflowId)!;
    expect(workflow.agents.w).toMatchObject({ completed: 1, busyMs: 0 });
    expect(d.state.agents!.w!.stats.byTaskType.t).toMatchObject({ completed: 1, avgMs: 0, p95Ms: 0, recentMs: [0] });
    expect(workflow.steps.s!.durationMs).toBe(0);
    expect(summarize(workflow, 1, 1_000).durationMs).toBe(0);
    expect(workOrderStats(Object.values(workflow.workOrders))).toMatchObject({
      attemptDuration: { count: 1, meanMs: 0, p95Ms: 0 },
      completedDuration: { count: 1, meanMs: 0, p95Ms: 0 },
    });
  });

  it('draws an attempt that ended before it started, by the clock, as lasting 0 ms in the report’s timeline', () => {
    const svg = timelineChart({ total: 1, items: [{ workOrderId: 'job', number: 1, agentId: 'w', outcome: 'completed', startedAt: 600_000, endedAt: 1_000 }] });
    expect(svg).toContain('(0 ms)');
    expect(svg).not.toContain('(-');
  });
});
