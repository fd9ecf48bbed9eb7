import { z } from 'zod';
import type { Ack } from './envelope.ts';
import { AddKpiInput, Kpi, RecordKpiInput } from './schemas/kpis.ts';
import { AddObjectiveInput, Objective, UpdateObjectiveInput } from './schemas/objectives.ts';
import { AddStepInput, CompleteStepInput, FailStepInput, Step, StepRef } from './schemas/steps.ts';
import { WorkflowSummary } from './schemas/summary.ts';
import {
  CancelWorkflowInput,
  StageProgress,
  CreateWorkflowInput,
  FailWorkflowInput,
  ListWorkflowsInput,
  StatusReply,
  UpdateProgressInput,
  VersionedWorkflow,
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
  'workflow.get': request(WorkflowRef, VersionedWorkflow, 'The whole state of one workflow and its version.'),
  'workflow.summary': request(WorkflowRef, WorkflowSummary, 'Status, durations, counts, progress, objectives and KPIs.'),
  'workflow.start': request(WorkflowRef, StatusReply, 'pending → in_progress.'),
  'workflow.complete': request(WorkflowRef, StatusReply, 'in_progress → completed.'),
  'workflow.fail': request(FailWorkflowInput, StatusReply, 'pending | in_progress → failed, with a reason.'),
  'workflow.cancel': request(CancelWorkflowInput, StatusReply, 'pending | in_progress → cancelled.'),
  'workflow.progress': request(UpdateProgressInput, Versioned(StageProgress), 'Set the progress of one stage (0..100).'),
  'step.add': request(AddStepInput, Versioned(Step), 'Add an execution step, pending or started.'),
  'step.start': request(StepRef, Versioned(Step), 'pending → running.'),
  'step.complete': request(CompleteStepInput, Versioned(Step), 'running → completed, with an optional result.'),
  'step.fail': request(FailStepInput, Versioned(Step), 'pending | running → failed, with an error.'),
  'objective.add': request(AddObjectiveInput, Versioned(Objective), 'Add an objective.'),
  'objective.update': request(UpdateObjectiveInput, Versioned(Objective), 'Change an objective’s status, progress or fields.'),
  'kpi.add': request(AddKpiInput, Versioned(Kpi), 'Add a KPI with a numeric target.'),
  'kpi.record': request(RecordKpiInput, Versioned(Kpi), 'Record a value of a KPI; history is kept.'),
} as const;

/** Requests of agents (namespace `/agent`, role agent). */
export const agentEvents = {} as const;

/** Requests of monitors (namespace `/monitor`, role monitor or admin). */
export const monitorEvents = {} as const;

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

/** socket.io's typed map of client → server events for namespace N. */
export type ClientEvents<N extends NamespaceName> = {
  [E in EventName<N>]: (payload: RequestOf<N, E>, ack: (reply: Ack<ReplyOf<N, E>>) => void) => void;
};
