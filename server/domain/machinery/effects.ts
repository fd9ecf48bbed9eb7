import type { Assignment, CancelNotice } from '../../../shared/schemas/work-order.ts';

/**
 * Something that happened to an order or an agent that an operator reads about in the hub's log.
 * The domain has no logger: it says what happened, once, and the hub logs it after commit.
 */
export type Notice =
  | {
      type: 'agent.registered';
      agentId: string;
      agentType: string;
      taskTypes: string[];
      /** A new agent; one known before, over a new connection (back from a disconnect or offline); or the same connection again (new task types). */
      how: 'new' | 'reconnected' | 'updated';
    }
  | { type: 'agent.offline'; agentId: string; /** When its socket went away; the grace period ran from then. */ disconnectedAt: number }
  | { type: 'agent.forgotten'; agentId: string; offlineSince: number }
  | {
      type: 'attempt.failed';
      workflowId: string;
      workOrderId: string;
      taskType: string;
      agentId: string;
      attempt: number;
      outcome: 'failed' | 'lease_expired' | 'agent_lost';
      error: string;
    }
  | { type: 'order.retrying'; workflowId: string; workOrderId: string; /** The number the next attempt will have. */ attempt: number; at: number }
  /** workOrder.retry changed an order: one that had failed is back with a fresh budget, or a queued one forgot its declines. */
  | { type: 'order.requeued'; workflowId: string; workOrderId: string; was: 'failed' | 'queued'; attempts: number; by: string }
  /** A control client paused a workflow: none of its `queued` orders (nor those queued later) is offered until it is resumed. */
  | { type: 'workflow.paused'; workflowId: string; by: string; reason: string | null; queued: number }
  /** A control client resumed a workflow paused for `pausedMs`: its `queued` orders are offered again. */
  | { type: 'workflow.resumed'; workflowId: string; by: string; pausedMs: number; queued: number }
  /** A sweep forgot the declines of `orders` orders every capable agent had declined (declinedRetryMs): they are offered again. */
  | { type: 'declines.forgotten'; orders: number; /** The first few, as `workflowId/workOrderId`. */ named: string[]; afterMs: number }
  | { type: 'order.deadLettered'; workflowId: string; workOrderId: string; taskType: string; attempts: number; error: string }
  /** A timer of the sweep (`offline:<agent>`, `lease:<token>`, `timeout:<order>`...) whose change threw: undone alone and put off. */
  | { type: 'timer.failed'; timer: string; error: Error; failures: number; retryInMs: number };

/** What the hub does after a change is committed: push an offer, tell an agent to stop or drain, or log a notice. */
export type Effect =
  | {
      type: 'offer';
      agentId: string;
      assignment: Assignment;
      /** When the order last became ready to offer. */
      readyAt: number;
      /** Carried in the reply of the report that made it (`next`), so not pushed. */
      inReply?: true;
    }
  | { type: 'cancel'; agentId: string; notice: CancelNotice }
  /** A control client drained or reactivated a connected agent: its SDK would not know otherwise. */
  | { type: 'drain'; agentId: string; draining: boolean }
  | Notice;
