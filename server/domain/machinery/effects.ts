import type { Assignment, CancelNotice } from '../../../shared/schemas/work-order.ts';

/** What the hub does after a change is committed: push an offer, or tell an agent to stop. */
export type Effect =
  | { type: 'offer'; agentId: string; assignment: Assignment; /** When the order last became ready to offer. */ readyAt: number }
  | { type: 'cancel'; agentId: string; notice: CancelNotice };
