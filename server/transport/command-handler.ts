import type { Command, CommandInput, CommandReply, CommandType } from '../domain/machinery/commands.ts';
import type { Session } from './namespaces.ts';

/** What a command handler needs of the hub: its one way in. */
export interface Dispatcher {
  dispatch<K extends CommandType>(command: Command<K>): Promise<CommandReply<K>>;
}

/**
 * A handler that dispatches the request as command `type`, as the session's actor. Its payload
 * and reply are the command's: put in a handler table, the compiler checks them against the
 * contract's event, so a command that takes another payload or answers otherwise does not fit.
 */
export function commandHandler<K extends CommandType>(hub: Dispatcher, type: K): (input: CommandInput<K>, session: Session) => Promise<CommandReply<K>> {
  return (input, session) => hub.dispatch({ type, input, actor: session.actor });
}
