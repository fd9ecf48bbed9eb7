import type { EventName, ParsedRequestOf } from '../../../shared/contract.ts';
import type { Assignment } from '../../../shared/schemas/work-order.ts';
import { HubError } from '../../../shared/errors.ts';
import { markDisconnected, recoverAfterRestart, registerAgent, startDraining } from '../work/agent-connections.ts';
import { agentIdOf, requireAgent, setAgentStatus } from '../work/agents.ts';
import { answerOffer, completeTask, failTask, heartbeat, recordProgress, registerTaskData } from '../work/attempts.ts';
import type { Actor } from './actor.ts';
import { requireWorkflow, type CommandContext } from './context.ts';
import { registerReferences, updateReference, validateReference, type Observation, type PreparedSpec } from '../data/inventory.ts';
import { addKpi, recordKpi } from '../workflows/kpis.ts';
import { linkLineage } from '../data/lineage.ts';
import { addObjective, updateObjective } from '../workflows/objectives.ts';
import { updateProgress } from '../workflows/progress.ts';
import { carryOffers, schedule } from '../work/scheduler.ts';
import { versionOf, type HubState } from './state.ts';
import { addStep, completeStep, failStep, startStep } from '../workflows/steps.ts';
import { retryOrder } from '../work/retry.ts';
import { endPause, pauseWorkflow, resumeWorkflow } from '../work/pause.ts';
import { sweep } from '../work/sweep.ts';
import { evictWorkflow } from '../workflows/archiving.ts';
import { cancelOrder, cancelWorkflowOrders, createOrders, releaseWorkflowOrders } from '../work/work-orders.ts';
import { changeStatus, createWorkflow, type LifecycleChange } from '../workflows/workflows.ts';

type In<E extends EventName<'control'>> = ParsedRequestOf<'control', E>;
type AgentIn<E extends EventName<'agent'>> = ParsedRequestOf<'agent', E>;

/** The workflow's orders that are offered to or running on an agent now: the attempts of the agents at work in it, not every attempt of the hub. */
function currentAssignments(state: HubState, workflowId: string) {
  const assigned = [];
  for (const agentId of state.work.workflowAgents.get(workflowId)?.keys() ?? []) {
    for (const token of state.work.byAgent.get(agentId) ?? []) {
      const active = state.work.active.get(token)!;
      if (active.workflowId === workflowId) assigned.push({ workOrderId: active.workOrderId, agentId: active.agentId, state: active.phase });
    }
  }
  return assigned;
}

/**
 * Sets an agent's status (its own word or a control client's). A connected agent whose draining
 * changed is pushed `drain` whoever changed it: the pushes are then every change in the order
 * made, which an SDK can trust over a reply applied before the last of them.
 */
function changeAgentStatus(t: CommandContext, agentId: string, change: AgentIn<'agent.status'>) {
  const wasDraining = t.state.agents?.[agentId]?.status === 'draining';
  const agent = setAgentStatus(t, agentId, change);
  if (change.status === 'draining') startDraining(t, agentId);
  const draining = t.state.agents?.[agentId]?.status === 'draining';
  if (draining !== wasDraining && t.state.work.connected.has(agentId)) t.tx.effect({ type: 'drain', agentId, draining });
  return agent;
}

/** A lifecycle change, then what it means for the workflow's work orders. */
function lifecycle(t: CommandContext, workflowId: string, change: LifecycleChange, reason?: string) {
  const reply = changeStatus(t, workflowId, change, reason);
  const workflow = requireWorkflow(t.state, workflowId);
  if (change === 'start') releaseWorkflowOrders(t, workflow);
  else {
    cancelWorkflowOrders(t, workflow, `workflow ${change === 'complete' ? 'completed' : change === 'fail' ? 'failed' : 'cancelled'}`);
    endPause(t, workflow);
  }
  return { ...reply, version: versionOf(t.state, workflowId) };
}

/**
 * Every state change the hub knows, by name, with the function that performs it. A transport
 * handler, an HTTP route or a timer builds a command; only StateWriter.dispatch runs it.
 */
export const transitions = {
  'workflow.create': (t: CommandContext, input: In<'workflow.create'>) => createWorkflow(t, input),
  'workflow.start': (t: CommandContext, input: In<'workflow.start'>) => lifecycle(t, input.workflowId, 'start'),
  'workflow.complete': (t: CommandContext, input: In<'workflow.complete'>) => lifecycle(t, input.workflowId, 'complete'),
  'workflow.fail': (t: CommandContext, input: In<'workflow.fail'>) => lifecycle(t, input.workflowId, 'fail', input.reason),
  'workflow.cancel': (t: CommandContext, input: In<'workflow.cancel'>) => lifecycle(t, input.workflowId, 'cancel', input.reason),
  'workflow.pause': (t: CommandContext, input: In<'workflow.pause'>, actor: Actor) => pauseWorkflow(t, input, actor),
  'workflow.resume': (t: CommandContext, input: In<'workflow.resume'>, actor: Actor) => resumeWorkflow(t, input, actor),
  'workflow.progress': (t: CommandContext, input: In<'workflow.progress'>) => updateProgress(t, input),
  'workflow.autoAssign': (t: CommandContext, input: In<'workflow.autoAssign'>) => {
    requireWorkflow(t.state, input.workflowId);
    schedule(t);
    return { assigned: currentAssignments(t.state, input.workflowId) };
  },
  'step.add': (t: CommandContext, input: In<'step.add'>) => addStep(t, input),
  'step.start': (t: CommandContext, input: In<'step.start'>) => startStep(t, input),
  'step.complete': (t: CommandContext, input: In<'step.complete'>) => completeStep(t, input),
  'step.fail': (t: CommandContext, input: In<'step.fail'>) => failStep(t, input),
  'objective.add': (t: CommandContext, input: In<'objective.add'>) => addObjective(t, input),
  'objective.update': (t: CommandContext, input: In<'objective.update'>) => updateObjective(t, input),
  'kpi.add': (t: CommandContext, input: In<'kpi.add'>) => addKpi(t, input),
  'kpi.record': (t: CommandContext, input: In<'kpi.record'>) => recordKpi(t, input),
  'workOrder.create': (t: CommandContext, input: In<'workOrder.create'>) => {
    const { workflowId, ...spec } = input;
    const [item] = createOrders(t, workflowId, [spec]);
    return { version: versionOf(t.state, workflowId), item: item! };
  },
  'workOrder.createMany': (t: CommandContext, input: In<'workOrder.createMany'>) => ({
    items: createOrders(t, input.workflowId, input.orders),
    version: versionOf(t.state, input.workflowId),
  }),
  'workOrder.cancel': (t: CommandContext, input: In<'workOrder.cancel'>) => cancelOrder(t, input),
  'workOrder.retry': (t: CommandContext, input: In<'workOrder.retry'>, actor: Actor) => retryOrder(t, input, actor),
  /** data.register and data.registerMany, once the transport has looked at the files. */
  'data.register': (t: CommandContext, input: { workflowId: string; items: PreparedSpec[] }, actor: Actor) => ({
    items: registerReferences(t, input.workflowId, input.items, actor),
    version: versionOf(t.state, input.workflowId),
  }),
  'data.update': (t: CommandContext, input: Parameters<typeof updateReference>[1], actor: Actor) => updateReference(t, input, actor),
  'data.validate': (t: CommandContext, input: { workflowId: string; dataId: string; version: number; observed: Observation }) => validateReference(t, input),
  'lineage.link': (t: CommandContext, input: In<'lineage.link'>, actor: Actor) => linkLineage(t, input, actor),
  'agent.update': (t: CommandContext, input: In<'agent.update'>) => {
    const { agentId, ...change } = input;
    return changeAgentStatus(t, agentId, change);
  },
  /** `newConnection`: the agent registers over a socket other than the one it used before. */
  'agent.register': (t: CommandContext, input: AgentIn<'agent.register'> & { newConnection: boolean }) => registerAgent(t, input),
  'agent.status': (t: CommandContext, input: AgentIn<'agent.status'>, actor: Actor) => changeAgentStatus(t, agentIdOf(actor), input),
  /** `holding`: the transport holds the attempt open while it reads a report's files (heartbeat). */
  'agent.heartbeat': (t: CommandContext, input: AgentIn<'agent.heartbeat'> & { holding?: boolean }, actor: Actor) => heartbeat(t, input, actor),
  'task.progress': (t: CommandContext, input: AgentIn<'task.progress'>, actor: Actor) => recordProgress(t, input, actor),
  'task.complete': (t: CommandContext, input: Parameters<typeof completeTask>[1], actor: Actor) => completeTask(t, input, actor),
  'task.registerData': (t: CommandContext, input: Parameters<typeof registerTaskData>[1], actor: Actor) => registerTaskData(t, input, actor),
  'task.fail': (t: CommandContext, input: AgentIn<'task.fail'>, actor: Actor) => failTask(t, input, actor),
  /** The agent's answer to an assignment push (or the lack of one: accept false). */
  'offer.answer': (
    t: CommandContext,
    input: { workflowId: string; workOrderId: string; attemptToken: string; accept: boolean; reason?: string; silent?: boolean; timedOut?: boolean },
    actor: Actor,
  ) => {
    try {
      answerOffer(t, input, actor);
    } catch (error) {
      // The offer may have been withdrawn meanwhile (deadline, cancel); a late answer changes nothing.
      if (!(error instanceof HubError) || (error.code !== 'STALE_ATTEMPT' && error.code !== 'INVALID_TRANSITION')) throw error;
    }
    return {};
  },
  'agent.disconnect': (t: CommandContext, input: { agentId: string }) => {
    markDisconnected(t, input.agentId);
    const agent = requireAgent(t.state, input.agentId);
    return { agentId: agent.id };
  },
  'hub.sweep': (t: CommandContext, _input: object) => sweep(t),
  'hub.recover': (t: CommandContext, _input: object) => recoverAfterRestart(t),
  /** An ended workflow leaves memory: the archive holds it at `version`. */
  'hub.evict': (t: CommandContext, input: { workflowId: string; version: number }) => evictWorkflow(t, input),
} as const;

/** The name of a command. */
export type CommandType = keyof typeof transitions;
type TransitionOf<K extends CommandType> = (typeof transitions)[K];
/** What command K takes. */
export type CommandInput<K extends CommandType> = Parameters<TransitionOf<K>>[1];
/** What command K answers. */
export type CommandReply<K extends CommandType> = ReturnType<TransitionOf<K>>;

/**
 * The transitions seen through their command types. Indexed by a generic K it is still one
 * function of CommandInput<K> to CommandReply<K>, so applyCommand calls it without a cast.
 */
type TransitionTable = { [K in CommandType]: (t: CommandContext, input: CommandInput<K>, actor: Actor) => CommandReply<K> };
const table: TransitionTable = transitions;

/** Whether `type` names a command (for commands that come from outside the type checker). */
export function isCommandType(type: unknown): type is CommandType {
  return typeof type === 'string' && Object.hasOwn(transitions, type);
}

/** A request to change state. */
export interface Command<K extends CommandType = CommandType> {
  type: K;
  input: CommandInput<K>;
  actor: Actor;
}

/** Commands that may write thousands of ops: their transaction notes which may compact (Transaction.trackCompaction). */
const BULK_COMMANDS: ReadonlySet<CommandType> = new Set<CommandType>(['workflow.start', 'workflow.complete', 'workflow.fail', 'workflow.cancel', 'workOrder.createMany', 'hub.sweep', 'hub.recover']);

/** Runs one command against the state through its transaction, then lets the scheduler act. */
export function applyCommand<K extends CommandType>(t: CommandContext, command: Command<K>): CommandReply<K> {
  if (BULK_COMMANDS.has(command.type)) t.tx.trackCompaction();
  const reply = table[command.type](t, command.input, command.actor);
  schedule(t);
  if (asksForNext(command)) (reply as { next?: Assignment[] }).next = carryOffers(t, agentIdOf(command.actor));
  return reply;
}

/** A completion or failure report that takes the agent's next offers in its reply. */
function asksForNext(command: Command): command is Command<'task.complete' | 'task.fail'> {
  return (command.type === 'task.complete' || command.type === 'task.fail') && (command.input as CommandInput<'task.complete'>).next === true;
}
