/*
 * switchboard/client: the TypeScript SDK. Clients (agent, control, monitor), their options, the
 * errors they throw, and the types of what the hub sends back, inferred from the schemas the hub
 * itself checks against (shared/schemas), never written twice.
 */
export { connectAgent, AgentClient, type AgentOptions } from './agent.ts';
export {
  NonRetryableError,
  type AgentLogger,
  type DataSpec,
  type InputOf,
  type InputSchema,
  type Task,
  type TaskContext,
  type TaskHandler,
  type TaskOptions,
  type TaskOutcome,
  type TaskReport,
} from './task.ts';
export { connectControl, ControlClient } from './control.ts';
export { WorkflowHandle } from './workflow-handle.ts';
export { Connection, type ConnectOptions, type RequestOptions } from './connection.ts';
export { HubError, ERROR_CODES, type ErrorCode, type ErrorIssue } from '../shared/errors.ts';
export { connectMonitor, MonitorClient, Mirror, type AgentPool, type MirrorChange, type SubscribeOptions } from './monitor.ts';

export type { Agent, AgentStatus } from '../shared/schemas/agent.ts';
export type { DataReference, DataStatus, Provenance } from '../shared/schemas/data.ts';
export type { Kpi } from '../shared/schemas/kpis.ts';
export type { LineageTraversal, Transformation } from '../shared/schemas/lineage.ts';
export type { Objective } from '../shared/schemas/objectives.ts';
export type { Report, ReportFormat } from '../shared/schemas/report.ts';
export type { Step } from '../shared/schemas/steps.ts';
export type { WorkflowSummary } from '../shared/schemas/summary.ts';
export type { OrdersView, SummaryView, ViewSpecInput as ViewSpec } from '../shared/schemas/views.ts';
export type { Assignment, WorkOrder, WorkOrderState } from '../shared/schemas/work-order.ts';
export type { StageProgress, Workflow, WorkflowConfig, WorkflowHeader, WorkflowStatus } from '../shared/schemas/workflow.ts';
export type { Priority } from '../shared/schemas/common.ts';
/** What each request takes and its reply holds, by namespace and event: `RequestOf<'control', 'workOrder.create'>`. */
export type { EventName, NamespaceName, ReplyOf, RequestOf } from '../shared/contract.ts';
