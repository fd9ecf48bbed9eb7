import type { Socket } from 'socket.io';
import { HubError } from '../../shared/errors.ts';
import { OfferReply, type Assignment, type CancelNotice } from '../../shared/schemas/work-order.ts';
import type { DataFiles } from '../data-files.ts';
import type { Actor } from '../domain/machinery/actor.ts';
import type { CommandInput, CommandType } from '../domain/machinery/commands.ts';
import { checkAttempt } from '../domain/work/attempts.ts';
import type { Effect } from '../domain/machinery/effects.ts';
import type { StateWriter } from '../state-writer.ts';
import type { Logger } from '../logger.ts';
import type { WorkflowReads } from '../workflow-reads.ts';
import { commandHandler } from './command-handler.ts';
import { prepareSpecs } from './inventory.ts';
import { sessionOf, type Handler, type Handlers, type Session } from './namespaces.ts';

/**
 * The `/agent` namespace: registration, task reports, and the pushes that carry offers and
 * cancellations to agents. One live socket per agentId; a newer one takes over.
 */
export class AgentTransport {
  private readonly sockets = new Map<string, Socket>();
  /** Agents whose disconnect could not be stored (a failed write): recorded again after the next commit. */
  private readonly unrecorded = new Map<string, Actor>();

  constructor(
    private readonly hub: StateWriter,
    private readonly log: Logger,
    private readonly files: DataFiles,
    private readonly reads: WorkflowReads,
    /** Told, for each offer pushed, how long its order waited since it became ready (ms). */
    private readonly onOffer: (waitedMs: number) => void = () => undefined,
  ) {}

  /** The request handlers. Everything but registration acts as the registered agent. */
  handlers(): Handlers<'agent'> {
    const hub = this.hub;
    const registered = (session: Session) => {
      if (!session.actor.agentId) throw new HubError('FORBIDDEN', 'register the agent first (agent.register)');
    };
    const asAgent = <K extends CommandType>(type: K) => {
      const dispatch = commandHandler(hub, type);
      return (input: CommandInput<K>, session: Session) => {
        registered(session);
        return dispatch(input, session);
      };
    };
    const progress = asAgent('task.progress');
    const fail = asAgent('task.fail');
    return {
      'agent.register': (input, session, socket) => this.register(input, session, socket),
      'agent.status': asAgent('agent.status'),
      'agent.heartbeat': asAgent('agent.heartbeat'),
      'task.progress': (input, session) => this.staleIfArchived(input, session, () => progress(input, session)),
      // Output files are checked before the completion is dispatched, never under the mutex, and
      // only once the attempt is seen to be this agent's (the command checks it again).
      'task.complete': ({ outputs, ...input }, session, socket) =>
        this.staleIfArchived(input, session, async () => {
          registered(session);
          const prepared = outputs?.length ? await readingReport(hub, input, session.actor, () => prepareSpecs(hub, this.files, input.workflowId, outputs)) : undefined;
          return this.carried(await hub.dispatch({ type: 'task.complete', input: prepared ? { ...input, outputs: prepared } : input, actor: session.actor }), session, socket);
        }),
      'data.register': ({ workflowId, workOrderId, attemptToken, ...spec }, session) => {
        const attempt = { workflowId, workOrderId, attemptToken };
        return this.staleIfArchived(attempt, session, async () => {
          registered(session);
          const [prepared] = await readingReport(hub, attempt, session.actor, () => prepareSpecs(hub, this.files, workflowId, [spec]));
          return hub.dispatch({ type: 'task.registerData', input: { ...attempt, ...prepared! }, actor: session.actor });
        });
      },
      'task.fail': (input, session, socket) => this.staleIfArchived(input, session, async () => this.carried(await fail(input, session), session, socket)),
    };
  }

  private async register(input: Parameters<Handler<'agent', 'agent.register'>>[0], session: Session, socket: Socket) {
    const bound = session.grant.agentId;
    if (bound && bound !== input.agentId) throw new HubError('FORBIDDEN', `this token may only register as agent ${bound}`);
    if (session.actor.agentId && session.actor.agentId !== input.agentId) {
      throw new HubError('CONFLICT', `this connection is already agent ${session.actor.agentId}`);
    }
    // The socket and the session's identity are in place before the command runs: the offers it
    // makes are pushed (and answered) as soon as it commits, before dispatch returns here.
    const previous = this.sockets.get(input.agentId);
    const previousActor = session.actor;
    this.sockets.set(input.agentId, socket);
    session.actor = { ...session.actor, agentId: input.agentId };
    let reply;
    try {
      reply = await this.hub.dispatch({ type: 'agent.register', input: { ...input, newConnection: previous !== socket }, actor: session.actor });
    } catch (error) {
      session.actor = previousActor;
      if (this.sockets.get(input.agentId) === socket) {
        if (previous?.connected) this.sockets.set(input.agentId, previous);
        else this.sockets.delete(input.agentId);
        // The previous connection closed meanwhile and left its disconnect to this one, which now
        // does not take over: record it, or the agent would count as connected for good.
        if (previous?.disconnected) this.recordDisconnect(input.agentId, sessionOf(previous).actor);
      }
      throw error;
    }
    // Not when the previous connection registered again since, committed with this one: it holds
    // the agent now and closes this connection in turn; closing it too would leave the agent none.
    if (previous && previous !== socket && previous !== this.sockets.get(input.agentId)) previous.disconnect(true);
    return reply;
  }

  /**
   * A report on a workflow archived since is STALE_ATTEMPT, as one on an attempt ended in memory
   * is, with how this agent's attempts ended, read from the archive: an agent whose first report's
   * answer was lost, away past keepFinishedMs, tells by it that the report landed.
   */
  private async staleIfArchived<T>(input: Parameters<typeof checkAttempt>[1], session: Session, report: () => Promise<T>): Promise<T> {
    try {
      return await report();
    } catch (error) {
      if (!(error instanceof HubError) || error.code !== 'INVALID_TRANSITION' || !session.actor.agentId || !this.reads.archive.has(input.workflowId)) throw error;
      // Throws STALE_ATTEMPT (an archived workflow's orders have all ended), or NOT_FOUND for an order it never had.
      await this.reads.read(input.workflowId, (state) => checkAttempt(state, input, session.actor));
      throw error;
    }
  }

  /** Called when an agent socket closes: the agent waits out its grace period. */
  onDisconnect(session: Session, socket: Socket): void {
    const agentId = session.actor.agentId;
    if (!agentId || this.sockets.get(agentId) !== socket) return;
    this.sockets.delete(agentId);
    this.recordDisconnect(agentId, session.actor);
  }

  /** Records that an agent's connection is gone: it waits out its grace period. */
  private recordDisconnect(agentId: string, actor: Actor): void {
    // A node that stopped leading closes its agents: the next leader counts them as gone until they register there.
    if (this.hub.currentRole !== 'leader') return;
    this.hub.dispatch({ type: 'agent.disconnect', input: { agentId }, actor }).catch((error: Error) => {
      this.log.warn({ err: error, agentId }, 'could not record agent disconnect');
      // The hub no longer counts it as connected; its record waits for writes that work.
      if (error instanceof HubError && error.code === 'UNAVAILABLE' && !this.sockets.has(agentId)) this.unrecorded.set(agentId, actor);
    });
  }

  /** Carries out the effects of a committed batch, and records the disconnects an earlier write lost (writes work again). */
  run(effects: readonly Effect[]): void {
    for (const [agentId, actor] of this.unrecorded) {
      this.unrecorded.delete(agentId);
      if (!this.sockets.has(agentId)) this.recordDisconnect(agentId, actor);
    }
    for (const effect of effects) {
      if (effect.type === 'offer') {
        // Never below 0: the wall clock may have stepped back since the order became ready.
        this.onOffer(Math.max(0, this.hub.now() - effect.readyAt));
        if (!effect.inReply) this.offer(effect.agentId, effect.assignment);
      } else if (effect.type === 'cancel') this.cancel(effect.agentId, effect.notice);
      else if (effect.type === 'drain') this.sockets.get(effect.agentId)?.emit('drain', { draining: effect.draining });
    }
  }

  /**
   * The offers a report's reply carries (`next`), as they stand once it committed: one withdrawn
   * meanwhile (its order cancelled in the same batch) is left out, and when a newer connection
   * took the agent over they are pushed there instead, since the reply goes to a connection about
   * to close whose offers nothing would withdraw.
   */
  private carried<R extends object>(reply: R, session: Session, socket: Socket): R & { next?: Assignment[] } {
    const next = (reply as { next?: Assignment[] }).next;
    const agentId = session.actor.agentId;
    if (!next?.length || !agentId) return reply;
    const standing = next.filter((assignment) => offered(this.hub, assignment));
    if (this.sockets.get(agentId) === socket) return { ...reply, next: standing };
    for (const assignment of standing) this.offer(agentId, assignment);
    return { ...reply, next: [] };
  }

  /** Pushes an offer and turns the ack (or its absence before the deadline) into accept or decline. */
  private offer(agentId: string, assignment: Assignment): void {
    // Withdrawn between commit and push (the agent reconnected, the offer lapsed): nothing to send.
    if (!offered(this.hub, assignment)) return;
    const socket = this.sockets.get(agentId);
    if (!socket) {
      // The agent's socket is already gone: record that, which also withdraws the offer.
      this.hub.dispatch({ type: 'agent.disconnect', input: { agentId }, actor: { role: 'system', name: 'transport' } }).catch(() => undefined);
      return;
    }
    const actor: Actor = sessionOf(socket).actor;
    // `silent`: no answer the hub understood, so the agent is also told to drop the offer (it may have started).
    const answer = ({ accept, reason, silent = false, timedOut = false }: { accept: boolean; reason?: string | undefined; silent?: boolean; timedOut?: boolean }) => {
      const input = { workflowId: assignment.workflowId, workOrderId: assignment.workOrderId, attemptToken: assignment.attemptToken, accept, silent, timedOut, ...(reason ? { reason } : {}) };
      this.hub.dispatch({ type: 'offer.answer', input, actor }).catch((error: Error) => this.log.warn({ err: error, agentId }, 'could not record offer answer'));
    };
    socket.timeout(assignment.acceptMs).emit('assignment', assignment, (error: Error | null, reply: unknown) => {
      // A socket that closed cannot answer; its disconnect (or the agent's reconnect) withdraws the offer.
      if (error && socket.disconnected) return;
      if (error) return answer({ accept: false, reason: 'no answer before the accept deadline', silent: true, timedOut: true });
      const parsed = OfferReply.safeParse(reply);
      if (!parsed.success) return answer({ accept: false, reason: 'unintelligible answer to the offer', silent: true });
      answer({ accept: parsed.data.accept, reason: parsed.data.accept ? undefined : parsed.data.reason });
    });
  }

  private cancel(agentId: string, notice: CancelNotice): void {
    this.sockets.get(agentId)?.emit('cancel', notice);
  }
}

/** Whether `assignment` is still its order's attempt (not withdrawn, lapsed or cancelled since it was made). */
function offered(hub: StateWriter, assignment: Assignment): boolean {
  const workflow = hub.state.workflows.get(assignment.workflowId);
  const order = workflow && Object.hasOwn(workflow.workOrders, assignment.workOrderId) ? workflow.workOrders[assignment.workOrderId] : undefined;
  return order?.attempt?.token === assignment.attemptToken;
}

/**
 * Runs `read` (the hub reading the files a report names, before it is dispatched) for an attempt
 * that is the agent's, keeping the attempt as the report found it: its lease renewed, or one still
 * offered held open (not accepted: the report may yet be refused), now and every third of its
 * lease or accept window until the read ends, so that neither runs out while big files are hashed
 * on a report that came in time.
 */
async function readingReport<T>(hub: StateWriter, input: Parameters<typeof checkAttempt>[1], actor: Actor, read: () => Promise<T>): Promise<T> {
  try {
    checkAttempt(hub.state, input, actor);
  } catch (error) {
    // Its refusal waits, as dispatch's do, for the changes it read to be stored (the SDK takes a repeated report's STALE_ATTEMPT for the first's success).
    await hub.whenStored();
    throw error;
  }
  const beat = () => hub.dispatch({ type: 'agent.heartbeat', input: { attemptTokens: [input.attemptToken], holding: true }, actor });
  await beat();
  const workflow = hub.state.workflows.get(input.workflowId);
  const timeouts = workflow && Object.hasOwn(workflow.workOrders, input.workOrderId) ? workflow.workOrders[input.workOrderId]!.timeouts : { leaseMs: 1000, acceptMs: 1000 };
  const timer = setInterval(() => void beat().catch(() => undefined), Math.max(10, Math.min(timeouts.leaseMs, timeouts.acceptMs) / 3));
  try {
    return await read();
  } finally {
    clearInterval(timer);
  }
}
