import type { Effect } from './domain/machinery/effects.ts';
import type { Logger } from './logger.ts';
import type { SnapshotEvent } from './store/store.ts';

// What the hub tells its operator about the work, the agents and the store, one line per event:
// info for the lifecycle, warn for failures, debug for the rest. Connections and refused tokens
// are logged where they happen (transport/namespaces.ts, http/router.ts).

/** A journal write slower than this (ms) is a warning: the disk is holding every acknowledgement up. */
export const SLOW_JOURNAL_WRITE_MS = 100;

const iso = (at: number) => new Date(at).toISOString();

/** Logs the notices among a committed batch's effects (offers and cancels are the agent transport's). */
export function logNotices(log: Logger, effects: readonly Effect[]): void {
  for (const effect of effects) {
    switch (effect.type) {
      case 'agent.registered': {
        const { agentId, agentType, taskTypes, how } = effect;
        // An agent's SDK registers again on the same connection for each task type it adds.
        if (how === 'updated') log.debug({ agentId, taskTypes }, 'agent registration updated');
        else log.info({ agentId, agentType, taskTypes, how }, 'agent registered');
        break;
      }
      case 'agent.offline':
        log.info({ agentId: effect.agentId, disconnectedAt: iso(effect.disconnectedAt) }, 'agent offline: its grace period expired');
        break;
      case 'agent.forgotten':
        log.info({ agentId: effect.agentId, offlineSince: iso(effect.offlineSince) }, 'agent forgotten: offline longer than forgetAgentsAfterMs');
        break;
      case 'attempt.failed': {
        const { workflowId, workOrderId, taskType, agentId, attempt, outcome, error } = effect;
        log.warn({ workflowId, workOrderId, taskType, agentId, attempt, outcome, error }, 'work order attempt failed');
        break;
      }
      case 'order.retrying':
        log.info({ workflowId: effect.workflowId, workOrderId: effect.workOrderId, attempt: effect.attempt, retryAt: iso(effect.at) }, 'work order will be retried');
        break;
      case 'order.requeued': {
        const { workflowId, workOrderId, was, attempts, by } = effect;
        log.info({ workflowId, workOrderId, was, attempts, by }, 'work order retried by a control client');
        break;
      }
      case 'workflow.paused': {
        const { workflowId, by, reason, queued } = effect;
        log.info({ workflowId, by, reason, queued }, 'workflow paused: its work orders are not offered until it is resumed');
        break;
      }
      case 'workflow.resumed': {
        const { workflowId, by, pausedMs, queued } = effect;
        log.info({ workflowId, by, pausedMs, queued }, 'workflow resumed: its queued work orders are offered again');
        break;
      }
      case 'declines.forgotten': {
        const { orders, named, afterMs } = effect;
        log.info({ orders, named, afterMs }, 'declines forgotten: work orders every capable agent had declined are offered again');
        break;
      }
      case 'order.deadLettered': {
        const { workflowId, workOrderId, taskType, attempts, error } = effect;
        log.warn({ workflowId, workOrderId, taskType, attempts, error }, 'work order failed for good (dead-lettered)');
        break;
      }
      case 'timer.failed': {
        const { timer, error, failures, retryInMs } = effect;
        log.error({ timer, failures, retryInMs, err: error }, 'a timer of the sweep failed: its change was undone, the others ran; it is tried again later');
        break;
      }
    }
  }
}

/** Warns of a journal write slower than SLOW_JOURNAL_WRITE_MS. */
export function logJournalWrite(log: Logger, ms: number, records: number): void {
  if (ms > SLOW_JOURNAL_WRITE_MS) log.warn({ ms: Math.round(ms), records }, 'slow journal write');
}

/** A snapshot's start (debug) and end (info); its failure is the store's warning. */
export function logSnapshot(log: Logger, event: SnapshotEvent): void {
  if (event.phase === 'started') log.debug({ from: event.from, journalBytes: event.journalBytes }, 'snapshot started');
  else log.info({ from: event.from, seq: event.seq, docs: event.docs, copied: event.copied, items: event.items, bytes: event.bytes, ms: Math.round(event.ms) }, 'snapshot written');
}
