import type { ParsedRequestOf } from '../../shared/contract.ts';
import type { Transition } from './context.ts';
import { addKpi, recordKpi } from './kpis.ts';
import { addObjective, updateObjective } from './objectives.ts';
import { updateProgress } from './progress.ts';
import { addStep, completeStep, failStep, startStep } from './steps.ts';
import { cancelWorkflow, changeStatus, createWorkflow, failWorkflow } from './workflows.ts';

/** Who asked for a change: recorded for provenance and checked for permissions. */
export interface Actor {
  role: 'admin' | 'agent' | 'monitor' | 'system';
  /** The token's name (never the secret) or the subsystem. */
  name: string;
  agentId?: string;
}

/**
 * Every state change the hub knows, by name, with the function that performs it. A transport
 * handler, an HTTP route or a timer builds a command; only Hub.dispatch runs it.
 */
export const transitions = {
  'workflow.create': (t: Transition, input: ParsedRequestOf<'control', 'workflow.create'>) => createWorkflow(t, input),
  'workflow.start': (t: Transition, input: ParsedRequestOf<'control', 'workflow.start'>) => changeStatus(t, input.workflowId, 'start'),
  'workflow.complete': (t: Transition, input: ParsedRequestOf<'control', 'workflow.complete'>) =>
    changeStatus(t, input.workflowId, 'complete'),
  'workflow.fail': failWorkflow,
  'workflow.cancel': cancelWorkflow,
  'workflow.progress': updateProgress,
  'step.add': addStep,
  'step.start': startStep,
  'step.complete': completeStep,
  'step.fail': failStep,
  'objective.add': addObjective,
  'objective.update': updateObjective,
  'kpi.add': addKpi,
  'kpi.record': recordKpi,
} as const;

export type CommandType = keyof typeof transitions;
type TransitionOf<K extends CommandType> = (typeof transitions)[K];
export type CommandInput<K extends CommandType> = Parameters<TransitionOf<K>>[1];
export type CommandReply<K extends CommandType> = ReturnType<TransitionOf<K>>;

/** A request to change state. */
export interface Command<K extends CommandType = CommandType> {
  type: K;
  input: CommandInput<K>;
  actor: Actor;
}

/** Runs one command against the state through its transaction. */
export function applyCommand<K extends CommandType>(t: Transition, command: Command<K>): CommandReply<K> {
  const transition = transitions[command.type] as unknown as (t: Transition, input: CommandInput<K>, actor: Actor) => CommandReply<K>;
  return transition(t, command.input, command.actor);
}
