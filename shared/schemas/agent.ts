import * as z from 'zod';
import { Id, keyedRecord, keyName, Page, Text, Timestamp } from './common.ts';

/** A capability or task type name. */
export const Capability = keyName(100);

/** idle/busy follow the agent's load; draining takes nothing new; the hub alone decides offline. */
export const AgentStatus = z.enum(['idle', 'busy', 'draining', 'offline']);
export type AgentStatus = z.infer<typeof AgentStatus>;

/** How one agent does on one task type. */
export const TaskTypeStats = z.object({
  completed: z.number().int(),
  failed: z.number().int(),
  avgMs: z.number(),
  p95Ms: z.number(),
  /** Durations of the most recent completions (ms), oldest first, for the percentile. */
  recentMs: z.array(z.number()),
});
export type TaskTypeStats = z.infer<typeof TaskTypeStats>;

/** An agent in the hub-wide pool (the `@agents` document). */
export const Agent = z.object({
  id: Id,
  agentType: z.string(),
  capabilities: z.array(Capability),
  /** Task types it has handlers for; `*` means any. */
  taskTypes: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
  maxConcurrentTasks: z.number().int(),
  status: AgentStatus,
  /** Free-text status note, e.g. what it is doing (update_agent_status's current_task). */
  note: Text.nullable(),
  /** Work orders offered to or running on it right now. */
  load: z.number().int(),
  registeredAt: Timestamp,
  lastAssignedAt: Timestamp.nullable(),
  /**
   * When the hub marked it offline; null while it is not. The pool forgets it `forgetAgentsAfterMs`
   * later. Absent in agents written before it was kept.
   */
  offlineSince: Timestamp.nullable().optional(),
  /**
   * When its connection went away, while it waits out the grace period (`graceMs`) to come back
   * and keep its work; null while connected and once offline. Absent in agents written before it
   * was kept.
   */
  disconnectedSince: Timestamp.nullable().optional(),
  /**
   * Offline, it was draining when it went offline or was drained since: it registers again as
   * draining (draining belongs to its id). Absent otherwise.
   */
  drainingOnReturn: z.boolean().optional(),
  /**
   * Draining for as long as its current connection lasts (it is closing once its running work
   * ends, `agent.status` with `untilDisconnect`): active again when that connection goes, or another
   * registers its id. Absent otherwise.
   */
  drainingUntilDisconnect: z.boolean().optional(),
  stats: z.object({
    assigned: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    declined: z.number().int(),
    byTaskType: z.record(z.string(), TaskTypeStats),
  }),
});
export type Agent = z.infer<typeof Agent>;

export const RegisterAgentInput = z.strictObject({
  agentId: Id,
  agentType: z.string().trim().min(1).max(100),
  capabilities: z.array(Capability).max(200).default([]),
  taskTypes: z.array(keyName(100)).max(200).default(['*']),
  maxConcurrentTasks: z.number().int().min(1).max(1000).default(1),
  labels: keyedRecord(keyName(100), z.string().max(200)).prefault({}),
});

/** An attempt the hub believes the agent holds; sent back on (re-)registration. */
export const HeldAttempt = z.object({
  workflowId: Id,
  workOrderId: Id,
  attemptToken: z.string(),
  state: z.enum(['offered', 'running']),
});

export const RegisterAgentReply = z.object({ agent: Agent, attempts: z.array(HeldAttempt) });

const StatusChange = {
  status: z.enum(['draining', 'active']).optional(),
  note: Text.nullable().optional(),
};

/**
 * An agent's own status change: draining stops new work; active resumes it. `untilDisconnect`
 * drains for the life of this connection only (a process finishing its work before it exits).
 */
export const AgentStatusInput = z
  .strictObject({ ...StatusChange, untilDisconnect: z.boolean().optional() })
  .refine((input) => !input.untilDisconnect || input.status === 'draining', { message: 'untilDisconnect goes with status "draining"', path: ['untilDisconnect'] });

/** Pushed to a connected agent whose draining a control client changed: the hub's word on it. */
export const DrainNotice = z.object({ draining: z.boolean() });
export type DrainNotice = z.infer<typeof DrainNotice>;

/** update_agent_status from a control client. */
export const UpdateAgentInput = z.strictObject({ ...StatusChange, agentId: Id });

export const AgentRef = z.strictObject({ agentId: Id });

/** A page of the agent pool in id order; the cursor is the last id seen (an agent forgotten since is no matter). */
export const ListAgentsInput = z.strictObject({ limit: Page.limit, cursor: Id.optional() });

/** A page of agents with the version of the pool, and the cursor of the next page (null on the last). */
export const AgentPage = z.object({ version: z.number().int(), items: z.array(Agent), nextCursor: z.string().nullable() });

/** Renews the leases of the attempts an agent is running. */
export const HeartbeatInput = z.strictObject({ attemptTokens: z.array(z.string().max(100)).max(1000) });
