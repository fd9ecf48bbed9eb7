/*
 * Type-level specification of the embedding API, checked by `npx tsc --noEmit -p .` (vitest does
 * not run it). Each `@ts-expect-error` is a mistake the types must catch; tsc fails if one is accepted.
 */
import type { RunningHub } from 'switchboard/server';

export function readOnlyState(hub: RunningHub, workflowId: string): number {
  const workflow = hub.state.workflows.get(workflowId)!;
  // Reading is what the state is there for.
  const queued = workflow.workOrderCounts.queued + Object.keys(hub.state.agents ?? {}).length + (hub.state.versions.get(workflowId) ?? 0);
  // Writing outside a command is not: no journal record, no version, no patch to the monitors.
  // @ts-expect-error a workflow's fields are read-only outside the writer
  workflow.status = 'completed';
  // @ts-expect-error so are those of its work orders, however deep
  workflow.workOrders.job!.attempt!.agentId = 'someone-else';
  // @ts-expect-error and its arrays
  workflow.workOrders.job!.history.push(workflow.workOrders.job!.history[0]!);
  // @ts-expect-error documents cannot be added or removed
  hub.state.workflows.delete(workflowId);
  // @ts-expect-error nor versions changed
  hub.state.versions.set(workflowId, 0);
  // @ts-expect-error nor the agent pool replaced
  hub.state.agents = {};
  // @ts-expect-error the scheduler's index is not shown at all
  void hub.state.work;
  // @ts-expect-error the writer itself is not handed out
  void hub.core;
  return queued;
}
