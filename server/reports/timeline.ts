import type { WorkOrder } from '../../shared/schemas/work-order.ts';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { compareText } from './ordering.ts';

/** What happened, in the order events at the same millisecond are listed. */
const KINDS = [
  'workflow.created',
  'workflow.started',
  'stage.started',
  'step.started',
  'attempt.offered',
  'attempt.started',
  'attempt.ended',
  'step.ended',
  'stage.completed',
  'workOrder.ended',
  'workflow.ended',
] as const;
export type TimelineKind = (typeof KINDS)[number];

/** One event of the execution timeline; `text` is plain (renderers escape it). */
export interface TimelineEvent {
  at: number;
  kind: TimelineKind;
  /** The workflow, stage, step or work order it is about. */
  subject: string;
  text: string;
  /** Attempt number, to order two attempts of one order that share a millisecond. */
  sequence: number;
}

/** One attempt of a work order as a bar on the time axis. */
export interface AttemptBar {
  workOrderId: string;
  number: number;
  agentId: string;
  /** How it ended, or `running` while it runs (drawn up to the end of the record). */
  outcome: string;
  startedAt: number;
  endedAt: number;
}

/** A bounded, chronological slice of a longer list. */
export interface Bounded<T> {
  total: number;
  items: T[];
}

const rank = new Map<TimelineKind, number>(KINDS.map((kind, index) => [kind, index]));

function chronological(a: TimelineEvent, b: TimelineEvent): number {
  return a.at - b.at || rank.get(a.kind)! - rank.get(b.kind)! || compareText(a.subject, b.subject) || a.sequence - b.sequence;
}

const withError = (text: string, error: string | null) => (error ? `${text}: ${error}` : text);

function workOrderEvents(order: WorkOrder, push: (event: Omit<TimelineEvent, 'subject'>) => void): void {
  for (const record of order.history) {
    push({ at: record.startedAt, kind: 'attempt.started', text: `Work order ${order.id} (${order.taskType}) attempt ${record.number} started on ${record.agentId}`, sequence: record.number });
    push({ at: record.endedAt, kind: 'attempt.ended', text: withError(`Work order ${order.id} attempt ${record.number} on ${record.agentId} ended: ${record.outcome}`, record.error), sequence: record.number });
  }
  const current = order.attempt;
  if (current) {
    push({ at: current.offeredAt, kind: 'attempt.offered', text: `Work order ${order.id} (${order.taskType}) attempt ${current.number} offered to ${current.agentId}`, sequence: current.number });
    if (current.acceptedAt !== null) {
      push({ at: current.acceptedAt, kind: 'attempt.started', text: `Work order ${order.id} (${order.taskType}) attempt ${current.number} started on ${current.agentId}`, sequence: current.number });
    }
  }
  if (order.endedAt !== null) {
    // A completed order keeps the error of an earlier failed attempt; it is not why it ended.
    const error = order.state === 'completed' ? null : order.error;
    push({ at: order.endedAt, kind: 'workOrder.ended', text: withError(`Work order ${order.id} ${order.state}`, error), sequence: order.attempts });
  }
}

/**
 * The execution timeline from the workflow's own timestamps: lifecycle, stages, steps, and
 * work order attempts and ends. Only the latest `limit` events are kept, oldest first.
 */
export function timelineEvents(workflow: Workflow, limit: number): Bounded<TimelineEvent> {
  const events: TimelineEvent[] = [];
  const about = (subject: string) => (event: Omit<TimelineEvent, 'subject'>) => events.push({ ...event, subject });
  const lifecycle = about(workflow.id);
  lifecycle({ at: workflow.createdAt, kind: 'workflow.created', text: 'Workflow created', sequence: 0 });
  if (workflow.startedAt !== null) lifecycle({ at: workflow.startedAt, kind: 'workflow.started', text: 'Workflow started', sequence: 0 });
  if (workflow.endedAt !== null) {
    lifecycle({ at: workflow.endedAt, kind: 'workflow.ended', text: withError(`Workflow ${workflow.status}`, workflow.failureReason), sequence: 0 });
  }
  for (const stage of Object.values(workflow.stages)) {
    const push = about(stage.name);
    push({ at: stage.startedAt, kind: 'stage.started', text: `Stage ${stage.name} started`, sequence: 0 });
    if (stage.completedAt !== null) push({ at: stage.completedAt, kind: 'stage.completed', text: `Stage ${stage.name} completed`, sequence: 0 });
  }
  for (const step of Object.values(workflow.steps)) {
    const push = about(step.id);
    const by = step.agentId ? ` (${step.agentId})` : '';
    if (step.startedAt !== null) push({ at: step.startedAt, kind: 'step.started', text: `Step ${step.name}${by} started`, sequence: 0 });
    if (step.endedAt !== null) {
      const took = step.durationMs === null ? '' : ` after ${step.durationMs} ms`;
      push({ at: step.endedAt, kind: 'step.ended', text: withError(`Step ${step.name}${by} ${step.status}${took}`, step.error), sequence: 0 });
    }
  }
  for (const order of Object.values(workflow.workOrders)) workOrderEvents(order, about(order.id));
  events.sort(chronological);
  return { total: events.length, items: events.slice(Math.max(0, events.length - limit)) };
}

/**
 * The latest `limit` attempts of the workflow's work orders as bars, by start time. An attempt
 * still running is drawn up to `asOf` (the end of the record, never the wall clock).
 */
export function attemptBars(orders: WorkOrder[], asOf: number, limit: number): Bounded<AttemptBar> {
  const bars: AttemptBar[] = [];
  for (const order of orders) {
    for (const record of order.history) {
      bars.push({ workOrderId: order.id, number: record.number, agentId: record.agentId, outcome: record.outcome, startedAt: record.startedAt, endedAt: record.endedAt });
    }
    const current = order.attempt;
    if (current && current.acceptedAt !== null) {
      bars.push({ workOrderId: order.id, number: current.number, agentId: current.agentId, outcome: 'running', startedAt: current.acceptedAt, endedAt: Math.max(asOf, current.acceptedAt) });
    }
  }
  bars.sort((a, b) => a.startedAt - b.startedAt || compareText(a.workOrderId, b.workOrderId) || a.number - b.number);
  return { total: bars.length, items: bars.slice(Math.max(0, bars.length - limit)) };
}
