import * as z from 'zod';
import type { Ack } from './envelope.ts';
import {
  Agent,
  AgentPage,
  AgentRef,
  AgentStatusInput,
  DrainNotice,
  HeartbeatInput,
  ListAgentsInput,
  RegisterAgentInput,
  RegisterAgentReply,
  UpdateAgentInput,
} from './schemas/agent.ts';
import {
  Assignment,
  CancelNotice,
  CancelWorkOrderInput,
  CompleteTaskInput,
  CreateWorkOrderInput,
  CreateWorkOrdersInput,
  FailTaskInput,
  ListWorkOrdersInput,
  OfferReply,
  OutcomeReply,
  ProgressInput,
  WorkOrder,
  WorkOrderRef,
} from './schemas/work-order.ts';
import {
  AgentRegisterDataInput,
  DataFilter,
  DataPage,
  DataRef,
  DataReference,
  RegisterDataInput,
  RegisterDataManyInput,
  UpdateDataInput,
} from './schemas/data.ts';
import { PruneArchiveInput, PruneArchiveReply } from './schemas/archive.ts';
import { AddKpiInput, Kpi, RecordKpiInput } from './schemas/kpis.ts';
import { LineageGraph, LineageGraphQuery, LineageQuery, LineageTraversal, LinkLineageInput, OpenLineageRef, OpenLineageRunEvent, Transformation } from './schemas/lineage.ts';
import { AddObjectiveInput, Objective, UpdateObjectiveInput } from './schemas/objectives.ts';
import { AddStepInput, CompleteStepInput, FailStepInput, Step, StepRef } from './schemas/steps.ts';
import { FollowedName, PatchMessage, ResyncNotice, SubscribeAllInput, SubscribeInput, Subscription } from './schemas/monitor.ts';
import { ReportInput, ReportReply, WrittenReports } from './schemas/report.ts';
import { ReadTransferInput, TransferPart } from './schemas/transfer.ts';
import { WorkflowSummary } from './schemas/summary.ts';
import {
  CancelWorkflowInput,
  PauseReply,
  PauseWorkflowInput,
  StageProgress,
  CreateWorkflowInput,
  FailWorkflowInput,
  ListWorkflowsInput,
  StatusReply,
  UpdateProgressInput,
  VersionedWorkflow,
  WorkflowReply,
  WorkflowHeader,
  WorkflowRef,
} from './schemas/workflow.ts';

/** One request event: the schema of its payload, the schema of its reply, and what it does. */
export interface RequestSpec<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  request: Req;
  reply: Res;
  doc: string;
}

function request<Req extends z.ZodType, Res extends z.ZodType>(req: Req, reply: Res, doc: string): RequestSpec<Req, Res> {
  return { request: req, reply, doc };
}

/**
 * The `/control` requests that read: their replies may be the hub's state itself, sent as it is
 * when they are answered (a batch holds them until its last request is answered: see namespaces.ts).
 */
export const CONTROL_READS: ReadonlySet<string> = new Set([
  'workflow.list',
  'workflow.get',
  'workflow.summary',
  'workOrder.get',
  'workOrder.list',
  'workflow.report',
  'agent.list',
  'agent.get',
  'data.get',
  'data.search',
  'lineage.upstream',
  'lineage.downstream',
  'lineage.graph',
  'lineage.openLineage',
]);

/** The reply to a change that only needs to say which version it produced. */
const Versioned = <T extends z.ZodType>(item: T) => z.object({ version: z.number().int(), item });

/** Requests of control clients (namespace `/control`, role admin). */
export const controlEvents = {
  'workflow.create': request(CreateWorkflowInput, VersionedWorkflow, 'Create a workflow in status pending.'),
  'workflow.list': request(
    ListWorkflowsInput,
    z.object({ items: z.array(WorkflowHeader), nextCursor: z.string().nullable() }),
    'List workflows, oldest first, optionally by status.',
  ),
  'workflow.get': request(WorkflowRef, WorkflowReply, 'The whole state of one workflow and its version (a big one as a transfer).'),
  'workflow.summary': request(WorkflowRef, WorkflowSummary, 'Status, durations, counts, progress, objectives and KPIs.'),
  'workflow.start': request(WorkflowRef, StatusReply, 'pending → in_progress.'),
  'workflow.complete': request(WorkflowRef, StatusReply, 'in_progress → completed.'),
  'workflow.fail': request(FailWorkflowInput, StatusReply, 'pending | in_progress → failed, with a reason.'),
  'workflow.cancel': request(CancelWorkflowInput, StatusReply, 'pending | in_progress → cancelled.'),
  'workflow.pause': request(
    PauseWorkflowInput,
    PauseReply,
    'Stop offering the workflow’s work orders (attempts already out go on) until it is resumed; pausing a paused one changes nothing.',
  ),
  'workflow.resume': request(WorkflowRef, PauseReply, 'Offer a paused workflow’s queued work orders again; resuming one not paused changes nothing.'),
  'workflow.progress': request(UpdateProgressInput, Versioned(StageProgress), 'Set the progress of one stage (0..100).'),
  'step.add': request(AddStepInput, Versioned(Step), 'Add an execution step, pending or started.'),
  'step.start': request(StepRef, Versioned(Step), 'pending → running.'),
  'step.complete': request(CompleteStepInput, Versioned(Step), 'running → completed, with an optional result.'),
  'step.fail': request(FailStepInput, Versioned(Step), 'pending | running → failed, with an error.'),
  'objective.add': request(AddObjectiveInput, Versioned(Objective), 'Add an objective.'),
  'objective.update': request(UpdateObjectiveInput, Versioned(Objective), 'Change an objective’s status, progress or fields.'),
  'kpi.add': request(AddKpiInput, Versioned(Kpi), 'Add a KPI with a numeric target.'),
  'kpi.record': request(RecordKpiInput, Versioned(Kpi), 'Record a value of a KPI; history is kept.'),
  'workOrder.create': request(CreateWorkOrderInput, Versioned(WorkOrder), 'Create a work order; it is offered to an agent as soon as it is ready.'),
  'workOrder.createMany': request(
    CreateWorkOrdersInput,
    z.object({ version: z.number().int(), items: z.array(WorkOrder) }),
    'Create up to 1000 work orders at once, all or none; they may depend on each other.',
  ),
  'workOrder.get': request(WorkOrderRef, Versioned(WorkOrder), 'One work order.'),
  'workOrder.list': request(
    ListWorkOrdersInput,
    z.object({ items: z.array(WorkOrder), nextCursor: z.string().nullable() }),
    'Work orders of a workflow in creation order, optionally by state.',
  ),
  'workOrder.cancel': request(CancelWorkOrderInput, Versioned(WorkOrder), 'Cancel a work order; an agent running it is told to stop.'),
  'workOrder.retry': request(
    WorkOrderRef,
    Versioned(WorkOrder),
    'Put a failed work order back in the queue with a fresh budget of attempts, or offer a queued one again to the agents that declined it.',
  ),
  'workflow.report': request(ReportInput, ReportReply, 'A report of the workflow as it is now: json, markdown or html (a big one as a transfer).'),
  'workflow.generateReports': request(
    WorkflowRef,
    WrittenReports,
    'Write report.json, report.md and report.html to the workflow’s outputFolder now (generate_all_reports).',
  ),
  'workflow.autoAssign': request(
    WorkflowRef,
    z.object({ assigned: z.array(z.object({ workOrderId: z.string(), agentId: z.string(), state: z.enum(['offered', 'running']) })) }),
    'Run an assignment pass now and list the workflow’s current assignments. Assignment is automatic; this exists for parity.',
  ),
  'agent.list': request(ListAgentsInput, AgentPage, 'The agent pool, a page at a time in id order.'),
  'agent.get': request(AgentRef, Agent, 'One agent with its status, load and performance.'),
  'agent.update': request(UpdateAgentInput, Agent, 'Drain or reactivate an agent, or set its status note (update_agent_status).'),
  'transfer.read': request(ReadTransferInput, TransferPart, 'One part of a reply sent as a transfer (a workflow or report over 1 MB).'),
  'archive.prune': request(
    PruneArchiveInput,
    PruneArchiveReply,
    'Delete archived workflows that ended more than olderThanMs ago, and list them. Workflows still in memory are never deleted.',
  ),
  'data.register': request(
    RegisterDataInput,
    Versioned(DataReference),
    'Register a data reference; a local file is checked (size, sha256) when the workflow validates data. An existing id is CONFLICT.',
  ),
  'data.registerMany': request(
    RegisterDataManyInput,
    z.object({ version: z.number().int(), items: z.array(DataReference) }),
    'Register up to 1000 data references at once, all or none.',
  ),
  'data.update': request(UpdateDataInput, Versioned(DataReference), 'Make a new version of a data reference; the previous one joins its history.'),
  'data.validate': request(DataRef, Versioned(DataReference), 'Re-check a local file: valid, missing, or changed (sha256 differs from the recorded one).'),
  'data.get': request(DataRef, Versioned(DataReference), 'One data reference with its provenance and history.'),
  'data.search': request(DataFilter, DataPage, 'Search data references by type, tags, text, producer, status and time; sorted and paginated.'),
  'lineage.link': request(LinkLineageInput, Versioned(Transformation), 'Link input references to output references through an operation.'),
  'lineage.upstream': request(LineageQuery, LineageTraversal, 'What a reference was made from, to any depth (or maxDepth), nearest first, up to limit nodes and edges; cycle-safe.'),
  'lineage.downstream': request(LineageQuery, LineageTraversal, 'What was made from a reference, to any depth (or maxDepth), nearest first, up to limit nodes and edges; cycle-safe.'),
  'lineage.graph': request(LineageGraphQuery, LineageGraph, 'The lineage graph of a workflow, a page at a time: its references, then its transformations with their edges.'),
  'lineage.openLineage': request(OpenLineageRef, OpenLineageRunEvent, 'A finished work order as an OpenLineage RunEvent (COMPLETE, FAIL or ABORT), for Marquez and other consumers.'),
} as const;

/** Requests of agents (namespace `/agent`, role agent). */
export const agentEvents = {
  'agent.register': request(RegisterAgentInput, RegisterAgentReply, 'Join the pool (or rejoin after a reconnect, keeping in-flight work).'),
  'agent.status': request(AgentStatusInput, Agent, 'Start or stop draining; set a status note.'),
  'agent.heartbeat': request(
    HeartbeatInput,
    z.object({ renewed: z.array(z.string()), lost: z.array(z.string()) }),
    'Renew the leases of running attempts; `lost` lists tokens this agent no longer holds.',
  ),
  'task.progress': request(ProgressInput, z.object({ version: z.number().int() }), 'Report progress (renews the lease; details become the checkpoint).'),
  'task.complete': request(CompleteTaskInput, OutcomeReply, 'Finish the attempt successfully (with `next`: take the next offers in the reply).'),
  'data.register': request(
    AgentRegisterDataInput,
    Versioned(DataReference),
    'Register data produced by a running attempt; the hub fills in agent, work order and attempt.',
  ),
  'task.fail': request(FailTaskInput, OutcomeReply, 'Report a failed attempt; it is retried unless not retryable or out of attempts (with `next`: take the next offers in the reply).'),
} as const;

/** Events the hub pushes to clients: the payload, and the reply schema when it expects an ack. */
export const pushEvents = {
  agent: {
    assignment: { payload: Assignment, reply: OfferReply, doc: 'An offer; ack with { accept: true } or { accept: false, reason } before acceptMs.' },
    cancel: { payload: CancelNotice, reply: null, doc: 'Stop working on this attempt (cancelled, reassigned or timed out).' },
    drain: { payload: DrainNotice, reply: null, doc: 'A control client, or the agent itself, drained this agent (`draining: true`: take nothing new) or made it active again.' },
  },
  control: {},
  monitor: {
    patch: { payload: PatchMessage, reply: null, doc: 'Changes to a followed document or view, from version `from` to `to`; apply only if you hold `from`.' },
    resync: { payload: ResyncNotice, reply: null, doc: 'Subscribe to `doc` (a document or a view) again (`*`: everything) with the version you hold; you fell behind.' },
  },
} as const;

/** Requests of monitors (namespace `/monitor`, role monitor or admin). */
export const monitorEvents = {
  subscribe: request(
    SubscribeInput,
    Subscription,
    'Follow one document (a workflow, or @agents), or with `view` a view of a workflow (its summary, or a page of its orders): its state now, or with `version`, the patches missed since then. Then `patch` events.',
  ),
  subscribeAll: request(
    SubscribeAllInput,
    z.object({ docs: z.array(Subscription) }),
    'Follow every document the token may see, including workflows created later.',
  ),
  unsubscribe: request(z.strictObject({ doc: FollowedName }), z.object({}), 'Stop following a document, or a view by its name.'),
  summary: request(WorkflowRef, WorkflowSummary, 'A workflow summary.'),
  report: request(ReportInput, ReportReply, 'A report of the workflow as it is now: json, markdown or html (a big one as a transfer).'),
  'transfer.read': request(ReadTransferInput, TransferPart, 'One part of a reply sent as a transfer (a snapshot or report over 1 MB).'),
} as const;

/** Every request event of every namespace. Nobody spells an event name anywhere else. */
export const contract = {
  control: controlEvents,
  agent: agentEvents,
  monitor: monitorEvents,
} as const satisfies Record<string, Record<string, RequestSpec>>;

export type Contract = typeof contract;
export type NamespaceName = keyof Contract;
export type EventName<N extends NamespaceName> = keyof Contract[N] & string;
type Spec<N extends NamespaceName, E extends EventName<N>> = Contract[N][E] extends RequestSpec<infer Req, infer Res>
  ? { req: Req; res: Res }
  : never;
/** What a caller sends (defaults not yet applied). */
export type RequestOf<N extends NamespaceName, E extends EventName<N>> = z.input<Spec<N, E>['req']>;
/** What a handler receives after parsing (defaults applied). */
export type ParsedRequestOf<N extends NamespaceName, E extends EventName<N>> = z.output<Spec<N, E>['req']>;
/** What a successful request returns. */
export type ReplyOf<N extends NamespaceName, E extends EventName<N>> = z.output<Spec<N, E>['res']>;

type PushSpec = { payload: z.ZodType; reply: z.ZodType | null };
type PushesOf<N extends NamespaceName> = (typeof pushEvents)[N];

/** socket.io's typed map of server → client events for namespace N. */
export type ServerEvents<N extends NamespaceName> = {
  [E in keyof PushesOf<N> & string]: PushesOf<N>[E] extends { payload: infer P extends z.ZodType; reply: infer R }
    ? R extends z.ZodType
      ? (payload: z.output<P>, ack: (reply: z.input<R>) => void) => void
      : (payload: z.output<P>) => void
    : never;
};

/** The shape of a push entry (for documentation generators). */
export type { PushSpec };

/** socket.io's typed map of client → server events for namespace N. */
export type ClientEvents<N extends NamespaceName> = {
  [E in EventName<N>]: (payload: RequestOf<N, E>, ack: (reply: Ack<ReplyOf<N, E>>) => void) => void;
};
