/** Who asked for a change: recorded for provenance and checked for permissions. */
export interface Actor {
  role: 'admin' | 'agent' | 'monitor' | 'system';
  /** The token's name (never the secret) or the subsystem. */
  name: string;
  /** For agents: the agentId the session registered as. */
  agentId?: string;
}
