import { io, type Socket } from 'socket.io-client';
import { expect } from 'vitest';
import type { Assignment } from '../../shared/schemas/work-order.ts';
import { control, startHub, TOKENS } from './hub.ts';
import { deferred } from './wait.ts';

/** An offer pushed to a raw agent, its ack not yet sent. */
export type Offer = { assignment: Assignment; ack: (reply: unknown) => void };

/**
 * A hand-written agent (socket.io-client, no SDK) that holds on to each offer's ack, the way
 * python-socketio acks only once its handler has returned: its reports can overtake its accept.
 */
export async function rawAgent(url: string, agentId: string, taskTypes: string[], maxConcurrentTasks = 1) {
  const socket: Socket = io(`${url}/agent`, { auth: { token: TOKENS.agent }, transports: ['websocket'], reconnection: false, forceNew: true });
  const offers: Offer[] = [];
  let wake = deferred();
  socket.on('assignment', (assignment: Assignment, ack: (reply: unknown) => void) => {
    offers.push({ assignment, ack });
    wake.resolve();
  });
  const registered = await socket.emitWithAck('agent.register', { agentId, agentType: 'raw', taskTypes, maxConcurrentTasks });
  expect(registered.ok).toBe(true);
  return {
    socket,
    /** Offers pushed and not yet taken with nextOffer(). */
    offers,
    /** The next offer pushed to this agent, its ack not yet sent. */
    async nextOffer(): Promise<Offer> {
      while (offers.length === 0) {
        await wake.promise;
        wake = deferred();
      }
      return offers.shift()!;
    },
    request: (event: string, payload: unknown) => socket.emitWithAck(event, payload),
    close: () => socket.disconnect(),
  };
}

/** The fields every report about an attempt carries. */
export const refOf = ({ workflowId, workOrderId, attemptToken }: Assignment) => ({ workflowId, workOrderId, attemptToken });

/** A hub, a control client, a started workflow named `userQuery`, and a raw one-slot agent `agentId` for task type `t`. */
export async function rawAgentOnStartedWorkflow(agentId: string, userQuery: string) {
  const hub = await startHub();
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery });
  await wf.start();
  const worker = await rawAgent(hub.url, agentId, ['t']);
  return { hub, client, wf, worker };
}
