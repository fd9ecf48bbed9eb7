import type { Agent } from '../../../shared/schemas/agent.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { Workflow, WorkflowAgent } from '../../../shared/schemas/workflow.ts';
import { requireWorkflow, type CommandContext } from '../machinery/context.ts';
import { adjustLoad, recordAgentOutcome, requireAgent } from './agents.ts';
import { byLeastRecentlyAssigned } from './assignment.ts';

// An attempt's start and end as the agent's load, its performance and the order's history record
// them. Apart from attempts.ts so that work-orders.ts can end an attempt without importing it back.

/** How an attempt ended; `withdrawn`: an offer taken back for a reason not the agent's (it disconnected, say). */
export type Outcome = 'completed' | 'failed' | 'cancelled' | 'lease_expired' | 'agent_lost' | 'declined' | 'withdrawn';

/** The counters of an agent's record within a workflow. */
type WorkflowAgentCount = 'assigned' | 'completed' | 'failed' | 'declined' | 'busyMs';

/**
 * Counts an outcome in the agent's record within the workflow. A new record keeps the agent's
 * type and capabilities as they are now: the pool may forget the agent, the workflow must not.
 */
function recordWorkflowAgent(t: CommandContext, workflow: Workflow, agentId: string, field: WorkflowAgentCount, add = 1): void {
  const existing = workflow.agents[agentId];
  if (!existing) {
    const agent = requireAgent(t.state, agentId);
    const fresh: WorkflowAgent = { agentId, agentType: agent.agentType, capabilities: agent.capabilities, assigned: 0, completed: 0, failed: 0, declined: 0, busyMs: 0 };
    fresh[field] += add;
    t.tx.set(workflow.id, ['agents', agentId], fresh);
  } else {
    t.tx.set(workflow.id, ['agents', agentId, field], existing[field] + add);
  }
}

/** Counts a new offer for the agent (hub-wide and in the workflow). */
export function recordOffer(t: CommandContext, order: WorkOrder, agentId: string): void {
  adjustLoad(t, agentId, +1);
  recordAgentOutcome(t, agentId, order.taskType, 'assigned');
  recordWorkflowAgent(t, requireWorkflow(t.state, order.workflowId), agentId, 'assigned');
}

/** How endAttempt records the end: the error it names, and whether the agent is told to stop. */
export interface EndAttemptOptions {
  /** Recorded in the order's history and sent to the agent; default none. */
  error?: string | null;
  /** Push a cancel to the agent (when connected); false when the agent itself ended it. Default true. */
  notifyAgent?: boolean;
}

/**
 * Ends the order's current attempt: the agent's slot is freed, its performance counted, the
 * attempt kept in the order's history, and, when someone else ended it, the agent told to stop.
 */
export function endAttempt(t: CommandContext, order: WorkOrder, outcome: Outcome, { error = null, notifyAgent = true }: EndAttemptOptions = {}): void {
  const attempt = order.attempt;
  if (!attempt) return;
  const workflow = requireWorkflow(t.state, order.workflowId);
  const now = t.ctx.now;
  const path = ['workOrders', order.id];
  if (attempt.acceptedAt !== null && outcome !== 'declined' && outcome !== 'withdrawn') {
    t.tx.append(workflow.id, [...path, 'history'], { number: attempt.number, agentId: attempt.agentId, outcome, error, startedAt: attempt.acceptedAt, endedAt: now });
  }
  t.tx.set(workflow.id, [...path, 'attempt'], null);
  const work = t.state.work;
  const lease = work.leases.get(attempt.token);
  const released = work.release(attempt.token);
  // Undone, the attempt is in flight again under the lease it had: a rebuild would give it a new one.
  if (released) {
    t.tx.onUndo(() => {
      work.hold(released);
      if (lease !== undefined) work.leases.set(released.token, lease);
    });
  }
  // The agent left a workflow capped at maxConcurrentAgents: its place opens for another agent.
  // Every agent that may be free looks for work, this one included, least recently assigned first.
  if (workflow.config.maxConcurrentAgents !== null && !work.workflowAgents.get(workflow.id)?.has(attempt.agentId)) {
    const agentIds = work.availableAgents();
    for (const agentId of work.freed) agentIds.add(agentId);
    const agents: Agent[] = [];
    for (const agentId of agentIds) {
      const agent = t.state.agents?.[agentId];
      if (agent) agents.push(agent);
    }
    work.freed.clear();
    for (const agent of agents.sort(byLeastRecentlyAssigned)) work.freed.add(agent.id);
  }
  adjustLoad(t, attempt.agentId, -1);
  if (outcome === 'completed') {
    // Never below 0: a wall clock stepped back since the accept would record a negative duration.
    const duration = Math.max(0, now - (attempt.acceptedAt ?? attempt.offeredAt));
    recordAgentOutcome(t, attempt.agentId, order.taskType, 'completed', duration);
    recordWorkflowAgent(t, workflow, attempt.agentId, 'completed');
    recordWorkflowAgent(t, workflow, attempt.agentId, 'busyMs', duration);
  } else if (outcome === 'declined') {
    recordAgentOutcome(t, attempt.agentId, order.taskType, 'declined');
    recordWorkflowAgent(t, workflow, attempt.agentId, 'declined');
  } else if (outcome !== 'cancelled' && outcome !== 'withdrawn') {
    recordAgentOutcome(t, attempt.agentId, order.taskType, 'failed');
    recordWorkflowAgent(t, workflow, attempt.agentId, 'failed');
  }
  if (notifyAgent && t.state.work.connected.has(attempt.agentId)) {
    const reason = error ?? outcome;
    t.tx.effect({ type: 'cancel', agentId: attempt.agentId, notice: { workflowId: workflow.id, workOrderId: order.id, attemptToken: attempt.token, reason } });
  }
}
