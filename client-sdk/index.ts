export { connectAgent, AgentClient, type AgentOptions } from './agent.ts';
export { NonRetryableError, type DataSpec, type TaskContext, type TaskHandler, type TaskOutcome, type TaskReport } from './task.ts';
export { connectControl, ControlClient } from './control.ts';
export { WorkflowHandle } from './workflow-handle.ts';
export { Connection, type ConnectOptions, type RequestOptions } from './connection.ts';
export { HubError, ERROR_CODES, type ErrorCode } from '../shared/errors.ts';
export { connectMonitor, MonitorClient, Mirror, type AgentPool, type MirrorChange } from './monitor.ts';
