import * as z from 'zod';
import { contract, type EventName } from '../shared/contract.ts';
import { HubError } from '../shared/errors.ts';
import { isCommandType, type Command, type CommandType } from './domain/machinery/commands.ts';

/**
 * The commands whose input is a `/control` request exactly as the transport parses it: what an
 * embedding program dispatches gets the same check and defaults as a client's request. (The
 * others take input that the transport prepares itself, such as a file's observed checksum.)
 */
const CONTROL_COMMANDS = new Set<CommandType & EventName<'control'>>([
  'workflow.create',
  'workflow.start',
  'workflow.complete',
  'workflow.fail',
  'workflow.cancel',
  'workflow.pause',
  'workflow.resume',
  'workflow.progress',
  'workflow.autoAssign',
  'step.add',
  'step.start',
  'step.complete',
  'step.fail',
  'objective.add',
  'objective.update',
  'kpi.add',
  'kpi.record',
  'workOrder.create',
  'workOrder.createMany',
  'workOrder.cancel',
  'workOrder.retry',
  'agent.update',
  'lineage.link',
]);

const ActorShape = z.object({ role: z.enum(['admin', 'agent', 'monitor', 'system']), name: z.string(), agentId: z.string().optional() });

/**
 * Checks a command from an embedding program (`hub.dispatch`) as the transport checks a client's:
 * an unchecked one was journaled as given, and a workflow created without its defaults failed
 * every later command on it and every restart of the hub. Returns it with its input parsed.
 */
export function embeddedCommand<K extends CommandType>(command: Command<K>): Command<K> {
  const refuse = (what: string) => new HubError('VALIDATION', `hub.dispatch: ${what}`);
  if (typeof command !== 'object' || command === null) throw refuse('a command is an object { type, input, actor }');
  const { type } = command;
  const actor = ActorShape.safeParse(command.actor);
  if (!actor.success) throw refuse(`invalid actor: ${z.prettifyError(actor.error)}`);
  if (!isCommandType(type)) throw refuse(`unknown command type ${JSON.stringify(type)}`);
  if (!CONTROL_COMMANDS.has(type as CommandType & EventName<'control'>)) return command;
  const input = (contract.control[type as CommandType & EventName<'control'>].request as z.ZodType).safeParse(command.input);
  if (!input.success) throw refuse(`invalid input for ${type}: ${z.prettifyError(input.error)}`);
  return { ...command, input: input.data as Command<K>['input'] };
}

