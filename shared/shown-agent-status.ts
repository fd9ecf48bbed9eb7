import type { Agent } from './schemas/agent.ts';

/** The statuses an agent is shown with besides its own (dashboard, `switchboard status`, /metrics). */
export const SHOWN_ONLY_STATUSES = ['disconnected', 'closing'] as const;

/**
 * How an agent is shown: its status, but `disconnected` while it waits out its grace period away
 * (the hub still counts it busy or idle, keeping its work), and `closing` while it drains for its
 * connection only: its process finishes its running work, then exits (`close({ finish: true })`).
 */
export function shownAgentStatus(agent: Pick<Agent, 'status' | 'disconnectedSince' | 'drainingUntilDisconnect'>): string {
  if (agent.status !== 'offline' && typeof agent.disconnectedSince === 'number') return 'disconnected';
  return agent.status === 'draining' && agent.drainingUntilDisconnect === true ? 'closing' : agent.status;
}
