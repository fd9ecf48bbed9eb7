import type { z } from 'zod';
import { RegisterAgentInput } from '../../shared/schemas/agent.ts';
import type { Actor } from '../../server/domain/machinery/actor.ts';
import { applyCommand, type CommandInput, type CommandReply, type CommandType } from '../../server/domain/machinery/commands.ts';
import type { DomainSettings } from '../../server/domain/machinery/context.ts';
import { emptyState, type HubState } from '../../server/domain/machinery/state.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';

/** The actor of commands in domain tests. */
export const ADMIN: Actor = { role: 'admin', name: 'unit-test' };
/** Domain settings for tests: small history limits, short backoff. */
export const SETTINGS: DomainSettings = { outputRoot: '/tmp/out', kpiHistoryLimit: 3, dataHistoryLimit: 3, agingMs: 60_000, graceMs: 5_000, forgetAgentsAfterMs: 60_000, backoffBaseMs: 1_000, backoffMaxMs: 30_000, declinedRetryMs: 60_000 };

/** A domain under test: a state, a manual clock and sequential ids; no hub, socket or disk. */
export function domain(state: HubState = emptyState(), settings: DomainSettings = SETTINGS) {
  let clock = 1_000;
  // How far the wall clock (ctx.now) is ahead of the monotonic one (ctx.monotonicNow).
  let wallAhead = 0;
  let counter = 0;
  return {
    state,
    /** Moves the clock forward. */
    advance(ms: number) {
      clock += ms;
    },
    /** The clocks a command run now is given (Environment's now and monotonicNow). */
    clocks() {
      return { now: clock + wallAhead, monotonicNow: clock };
    },
    /** Steps the wall clock alone, as an NTP correction does; the monotonic clock goes on as it was. */
    stepWallClock(ms: number) {
      wallAhead += ms;
    },
    /** Registers (and connects) an agent, as the agent itself would. */
    register(agentId: string, fields: Partial<z.input<typeof RegisterAgentInput>> = {}) {
      const input = { ...RegisterAgentInput.parse({ agentId, agentType: 'worker', ...fields }), newConnection: true };
      return this.run('agent.register', input, { role: 'agent', name: agentId, agentId });
    },
    /** Applies a command and returns its reply plus the transaction (patches, effects). */
    run<K extends CommandType>(type: K, input: CommandInput<K>, actor: Actor = ADMIN): { reply: CommandReply<K>; tx: Transaction<Effect> } {
      const tx = new Transaction<Effect>(state);
      try {
        const reply = applyCommand(
          { state, tx, ctx: { now: clock + wallAhead, monotonicNow: clock, newId: (prefix) => `${prefix}_${++counter}`, settings } },
          { type, input, actor },
        );
        return { reply, tx };
      } catch (error) {
        tx.rollback();
        throw error;
      }
    },
  };
}
