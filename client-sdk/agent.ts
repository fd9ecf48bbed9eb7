import type { ReplyOf, RequestOf } from '../shared/contract.ts';
import { HubError } from '../shared/errors.ts';
import type { DrainNotice } from '../shared/schemas/agent.ts';
import type { Assignment, CancelNotice } from '../shared/schemas/work-order.ts';
import { Attempt, type AttemptHost, type Registration } from './attempt.ts';
import { Connection, mayHaveLanded, type ConnectOptions, type RequestOptions } from './connection.ts';
import './dispose.ts';
import { Heartbeat } from './heartbeat.ts';
import { Listeners } from './listeners.ts';
import { guardedLogger, type AgentLogger, type InputOf, type InputSchema, type TaskHandler, type TaskOptions, type TaskReport } from './task.ts';

/**
 * What an agent's `on` reports: a completion or failure the hub answered, an error it cannot go on
 * after, or a draining state from the hub unlike this process's.
 */
type AgentEvents = {
  report: TaskReport;
  error: HubError;
  draining: boolean;
};

/** Refusals of a completion that retrying cannot fix (bad outputs or result): the attempt fails for good. */
const REFUSED_FOR_GOOD: ReadonlySet<string> = new Set(['VALIDATION', 'CONFLICT', 'NOT_FOUND', 'FORBIDDEN']);

export interface AgentOptions extends ConnectOptions {
  agentId: string;
  agentType: string;
  capabilities?: string[];
  maxConcurrentTasks?: number;
  labels?: Record<string, string>;
  /**
   * Least time between two progress updates of one task (default 0: each is sent once the one
   * before it is answered, and those pushed meanwhile are coalesced into the newest).
   */
  progressIntervalMs?: number;
  /** Where errors thrown by task handlers are logged, with their stack (default console; null: nowhere). */
  logger?: AgentLogger | null;
}

const RETRYABLE_TRANSPORT: ReadonlySet<string> = new Set(['TIMEOUT', 'DISCONNECTED', 'UNAVAILABLE', 'RATE_LIMITED']);

/**
 * An agent: registers its capabilities, receives work pushed by the hub, runs the handler for
 * the task type, streams progress, heartbeats while tasks run, and reports the outcome.
 * Reconnects transparently and re-registers, keeping its in-flight work.
 */
export class AgentClient {
  private readonly handlers = new Map<string, Registration>();
  private readonly running = new Map<string, Attempt>();
  private readonly heartbeat = new Heartbeat(() => void this.beat());
  private isDraining = false;
  /**
   * Bumped by each drain(), resume() and `drain` push: a reply whose request went out before a
   * later word (the hub pushes every change of a connected agent's draining, in order) is stale.
   */
  private drainingWord = 0;
  private closed = false;
  /** Set by close({ finish: true }): no new work, for as long as this process keeps its connections. */
  private finishing = false;
  /**
   * While finishing: the request for this connection's drain. A decline waits for it: one the hub
   * read before it would be held against the agentId (declinedBy), and the next process could not take the order.
   */
  private finishDrain: Promise<void> | undefined;
  /** Called each time the last running task ends. */
  private readonly whenIdle = new Set<() => void>();
  /** A listener's error goes to the agent's logger, as a handler's does. */
  private readonly listeners = new Listeners<AgentEvents>((event, error) => this.host.logger?.error(`[switchboard] agent ${this.options.agentId}: a "${event}" listener threw:`, error));
  /** What each attempt needs from this agent. */
  private readonly host: AttemptHost;
  /** Whether this connection is registered; task reports wait for it so none reaches the hub first. */
  private isRegistered = true;
  private readonly waitingForRegistration: Array<() => void> = [];
  /** The latest agent.status request (drain or resume); a decline as draining waits for it, so that the hub has our word first. */
  private statusRequest: Promise<unknown> | undefined;

  constructor(
    readonly connection: Connection<'agent'>,
    private readonly options: AgentOptions,
  ) {
    this.host = {
      agentId: options.agentId,
      progressIntervalMs: options.progressIntervalMs ?? 0,
      logger: guardedLogger(options.logger === undefined ? console : options.logger),
      send: async (event, payload) => {
        await this.registered();
        return this.connection.request(event, payload);
      },
    };
    // A report whose batch the hub did not read goes again once this agent is registered again.
    connection.beforeResend = (event) => (event === 'agent.register' ? Promise.resolve() : this.registered());
    const socket = connection.socket;
    socket.on('assignment', (assignment: Assignment, ack: (reply: unknown) => void) => this.onAssignment(assignment, ack));
    socket.on('cancel', (notice: CancelNotice) => this.abort(notice.attemptToken, `cancelled by the hub: ${notice.reason}`));
    socket.on('drain', (notice: DrainNotice) => {
      // Finishing, and a control client made the agent active: this process still takes nothing, so it drains again (its connection's drain).
      if (this.finishing && notice.draining !== true) return void this.askFinishDrain();
      this.drainingWord++;
      this.adoptStatus(notice.draining === true);
    });
    // The socket is connected now, so every later 'connect' is a reconnect: register again, and the
    // hub keeps our running work if we are back within the grace period.
    socket.on('connect', () => void this.registerUntilDone());
    socket.on('disconnect', (reason) => {
      this.isRegistered = false;
      // The hub closed us on purpose (a newer connection took this agentId over, or our token was
      // revoked): socket.io will not reconnect, so the work here can no longer be reported.
      if (reason === 'io server disconnect') {
        for (const token of [...this.running.keys()]) this.abort(token, 'the hub closed this connection');
        this.stopped(new HubError('DISCONNECTED', 'the hub closed this connection (another connection registered this agentId, or the token was revoked)'));
      }
    });
  }

  /**
   * `report`: after the hub answers each completion or failure report. `error`: the agent cannot
   * go on (registration refused, or the hub closed the connection). `draining`: the hub's state
   * changed `draining`, in a registration's reply or a control client's `drain` push (the hub's state wins).
   */
  on<K extends keyof AgentEvents>(event: K, listener: (payload: AgentEvents[K]) => void): () => void {
    return this.listeners.on(event, listener);
  }

  /** The agent can take no more work: said in its log (or the process would sit idle with no sign why) and as `error`. */
  private stopped(error: HubError): void {
    this.host.logger?.error(`[switchboard] agent ${this.options.agentId} takes no more work: ${error.message}`, error);
    this.listeners.emit('error', error);
  }

  /** After a reconnect: registers, retrying while the hub is busy or unreachable, until it answers. */
  private async registerUntilDone(): Promise<void> {
    for (let delay = 100; !this.closed && this.connection.socket.connected; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.register();
        // Renewed now, not at the next beat: the leases ran on while we were away, and the next beat may come after them.
        void this.beat();
        return;
      } catch (error) {
        if (error instanceof HubError && !RETRYABLE_TRANSPORT.has(error.code)) {
          this.stopped(error);
          // Unregistered for good: its handlers' reports (and heartbeats) would wait for ever for a registration.
          for (const token of [...this.running.keys()]) this.abort(token, `the agent takes no more work: ${error.message}`);
          void this.close();
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * Whether this agent takes no new work: set by drain() and resume(), and by every registration's
   * reply, since draining belongs to the agentId on the hub (set before this process, or by a control client).
   */
  get draining(): boolean {
    return this.isDraining;
  }

  /** The number of tasks running now. */
  get activeTasks(): number {
    return this.running.size;
  }

  /**
   * Handles a task type (or `*` for any). Returning completes the work order with `result`;
   * throwing fails the attempt (retried unless it is a NonRetryableError) and logs the error.
   * With `{ input: schema }` each task's input is checked first: a mismatch fails the attempt
   * without retrying, with the issues in the work order's error, and the handler gets the parsed input.
   * @example await agent.onTask('clean', { input: z.object({ rows: z.number() }) }, async (task, ctx) => ({ result: task.input.rows }));
   */
  onTask<Input = unknown, Result = unknown>(taskType: string, handler: TaskHandler<Input, Result>): Promise<this>;
  onTask<Schema extends InputSchema, Result = unknown>(taskType: string, options: TaskOptions<Schema>, handler: TaskHandler<InputOf<Schema>, Result>): Promise<this>;
  async onTask(taskType: string, ...args: [TaskHandler] | [TaskOptions, TaskHandler]): Promise<this> {
    const [options, handler] = args.length === 1 ? [undefined, args[0]] : args;
    if (options && typeof options.input?.['~standard']?.validate !== 'function') {
      // Else every task of the type would fail as an input mismatch: say it before any is taken.
      throw new TypeError(`onTask("${taskType}"): input is no Standard Schema (zod 3.24 or later, valibot, arktype: one with ~standard.validate)`);
    }
    // As the hub keeps it: it trims names, and offers work under the trimmed one.
    const name = taskType.trim();
    const previous = this.handlers.get(name);
    this.handlers.set(name, { handler, input: options?.input });
    try {
      await this.register();
    } catch (error) {
      // Refused (a name the hub does not take): kept, it would make every later registration fail too.
      if (error instanceof HubError && !mayHaveLanded(error.code) && !RETRYABLE_TRANSPORT.has(error.code)) {
        if (previous) this.handlers.set(name, previous);
        else this.handlers.delete(name);
      }
      throw error;
    }
    return this;
  }

  /**
   * Joins the pool with the current handlers, then reconciles with the attempts the hub says we
   * hold: work we ran from before the (re)connection that the hub gave to someone else is aborted,
   * and work the hub thinks we run that this process does not know is handed back at once.
   */
  async register(): Promise<ReplyOf<'agent', 'agent.register'>> {
    // Tasks accepted while the request is in flight belong to this connection and stay.
    const before = new Set(this.running.keys());
    const word = this.drainingWord;
    const reply = await this.connection.request('agent.register', {
      agentId: this.options.agentId,
      agentType: this.options.agentType,
      capabilities: this.options.capabilities ?? [],
      taskTypes: this.handlers.size === 0 ? [] : this.handlers.has('*') ? ['*'] : [...this.handlers.keys()],
      maxConcurrentTasks: this.options.maxConcurrentTasks ?? 1,
      labels: this.options.labels ?? {},
    });
    this.isRegistered = true;
    // Finishing: a drain for a connection before this one ended with it (the hub cannot tell a new process from us), so it is asked again.
    if (this.finishing && reply.agent.status !== 'draining') this.askFinishDrain();
    else if (word === this.drainingWord) this.adoptStatus(reply.agent.status === 'draining');
    for (const resume of this.waitingForRegistration.splice(0)) resume();
    const held = new Set(reply.attempts.map((a) => a.attemptToken));
    for (const token of before) if (!held.has(token)) this.abort(token, 'the hub reassigned this work while we were away');
    for (const { workflowId, workOrderId, attemptToken, state } of reply.attempts) {
      if (state === 'running' && !this.running.has(attemptToken)) {
        // The hub thinks we run this, but this process does not (it restarted): hand it back at once.
        void this.report('task.fail', { workflowId, workOrderId, attemptToken, error: 'the agent restarted and lost this attempt', retryable: true });
      }
    }
    return reply;
  }

  /** Takes no new work; running tasks finish. */
  async drain(options?: RequestOptions): Promise<void> {
    await this.askStatus('draining', options);
  }

  /** Takes new work again after drain(), or after a registration found this agentId draining. */
  async resume(options?: RequestOptions): Promise<void> {
    await this.askStatus('active', options);
  }

  /**
   * Acts on `status` at once, then takes the hub's reply, unless a later word came first: a push
   * (of a change made after this one in the same commit, sent before this reply) or another call.
   */
  private async askStatus(status: 'draining' | 'active', options: RequestOptions | undefined, untilDisconnect = false): Promise<void> {
    const word = ++this.drainingWord;
    const was = this.isDraining;
    this.isDraining = status === 'draining';
    let reply;
    const request = this.connection.request('agent.status', untilDisconnect ? { status, untilDisconnect } : { status }, options);
    this.statusRequest = request;
    try {
      reply = await request;
    } catch (error) {
      // Refused without taking effect (RATE_LIMITED, say): the hub's state is as it was, so this process's is too;
      // draining here alone would decline every offer as draining, and the hub would hold each against the agent.
      if (word === this.drainingWord && error instanceof HubError && !mayHaveLanded(error.code)) this.isDraining = was;
      throw error;
    }
    if (word === this.drainingWord) this.isDraining = reply.status === 'draining';
  }

  /** Resolves once the hub has answered the registration and the status request of this process in flight (if any). */
  private async drainTold(): Promise<void> {
    await this.registered();
    await this.statusRequest?.catch(() => undefined);
    // Finishing: the connection's drain, asked again while the hub is busy (a refused try is not the hub's word).
    if (this.finishing) await this.finishDrain;
  }

  /** Takes the hub's draining state (a registration's reply, or a control client's change pushed as `drain`); a change is announced and logged, or the process would sit idle with no sign why. */
  private adoptStatus(draining: boolean): void {
    if (draining === this.isDraining) return;
    this.isDraining = draining;
    this.host.logger?.warn?.(
      draining
        ? `agent ${this.options.agentId} is draining on the hub (set under this agentId before, or by a control client): it takes no new work until resume()`
        : `agent ${this.options.agentId} is active on the hub again (set by a control client): it takes new work`,
    );
    this.listeners.emit('draining', draining);
  }

  /** Sets a free-text status note shown in summaries and the dashboard. */
  async setNote(note: string | null, options?: RequestOptions): Promise<void> {
    await this.connection.request('agent.status', { note }, options);
  }

  /**
   * Disconnects; resolves once the connection is closed. Running tasks are aborted; the hub
   * reassigns them after the grace period. With `finish`, the agent first takes no new work and
   * waits until its running tasks have ended and their reports were answered (a plain close()
   * meanwhile aborts them): a process on its way out (SIGTERM) loses no work it started.
   */
  async close(options: { finish?: boolean } = {}): Promise<void> {
    if (options.finish && !this.closed) await this.finishRunning();
    this.closed = true;
    this.heartbeat.stop();
    for (const token of [...this.running.keys()]) this.abort(token, 'the agent is closing');
    return this.connection.close();
  }

  /**
   * Drains for this connection only (the hub makes the agentId active again when it goes, so the
   * next process under it takes work), then waits for the running tasks to end.
   */
  private async finishRunning(): Promise<void> {
    this.finishing = true;
    // Not connected now: asked again at the registration after the reconnect.
    if (this.isRegistered && this.connection.socket.connected) await this.askFinishDrain();
    else this.isDraining = true;
    while (this.running.size > 0 && !this.closed) await new Promise<void>((resolve) => this.whenIdle.add(resolve));
  }

  /**
   * Asks the hub to drain this agent for the current connection only, again while it is busy or
   * rate-limits (declines meanwhile would be held against the agentId); refused for good, or the
   * connection gone (the registration asks again), offers are declined all the same.
   */
  private askFinishDrain(): Promise<void> {
    this.finishDrain = (async () => {
      for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 2000)) {
        try {
          return await this.askStatus('draining', undefined, true);
        } catch (error) {
          if (!(error instanceof HubError) || !RETRYABLE_TRANSPORT.has(error.code) || !this.connection.socket.connected) return;
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    })();
    return this.finishDrain;
  }

  /** `await using agent = await connectAgent(...)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private onAssignment(assignment: Assignment, ack: (reply: unknown) => void): void {
    const registration = this.handlers.get(assignment.taskType) ?? this.handlers.get('*');
    if (!registration) return ack({ accept: false, reason: `no handler for ${assignment.taskType}` });
    // Closing: no answer, the connection's offers are withdrawn with it and held against nobody.
    if (this.closed) return;
    // Answered once the hub has our word: a decline it reads while it counts us active is held against the agentId (the next
    // process under it too), and the registration's reply may say we are active after all (reactivated while we were away).
    if (this.isDraining || this.finishing) return void this.drainTold().then(() => this.answerOffer(assignment, registration, ack));
    this.answerOffer(assignment, registration, ack);
  }

  /** Accepts and runs an offer, or declines it as draining. */
  private answerOffer(assignment: Assignment, registration: Registration, ack: (reply: unknown) => void): void {
    if (this.closed) return;
    if (this.isDraining || this.finishing) return ack({ accept: false, reason: 'draining' });
    ack({ accept: true });
    void this.run(assignment, registration, false);
  }

  /**
   * An offer that came in a report's reply. The handler starts at once, and the offer is accepted
   * as it starts: by the handler's first report if it makes one in its first turn (most report
   * progress first), else by a heartbeat for its token (not waited for). Until then the hub would
   * count the order `offered`, not `running`, and treat it as an offer if the connection dropped
   * (withdrawn at once, no grace).
   */
  private onCarriedOffer(assignment: Assignment): void {
    const registration = this.handlers.get(assignment.taskType) ?? this.handlers.get('*');
    // Not to be run here after all. Draining meanwhile: the hub withdrew it when the drain reached it.
    // Closing: it is withdrawn with the connection, or lapses, and the hub offers it to another agent.
    if (!registration || this.isDraining || this.finishing || this.closed) return;
    void this.run(assignment, registration, true);
  }

  private async run(assignment: Assignment, registration: Registration, carried: boolean): Promise<void> {
    const attempt = new Attempt(assignment, this.host);
    this.running.set(assignment.attemptToken, attempt);
    this.heartbeat.cover(assignment.leaseMs);
    // Should the accept not get through, a heartbeat after half of acceptMs still accepts the offer.
    const fallback = carried ? setTimeout(() => void this.beat(), assignment.acceptMs / 2) : undefined;
    // After the handler's first turn (and the I/O it started): a report sent in it accepted the offer, with no message more.
    if (carried) setImmediate(() => attempt.reported || void this.accept(assignment.attemptToken, fallback));
    try {
      const outcome = await attempt.run(registration);
      // The report asks for this agent's next offer in its reply, unless no more work is wanted here.
      if (outcome && !this.isDraining && !this.finishing && !this.closed) outcome.payload.next = true;
      if (outcome?.event === 'task.fail') await this.report('task.fail', outcome.payload, assignment.attempt);
      if (outcome?.event !== 'task.complete') return;
      const refused = await this.report('task.complete', outcome.payload, assignment.attempt);
      // A completion that could not be sent at all (a result JSON cannot hold: a BigInt, a cycle) fails for good too.
      const why = !refused
        ? undefined
        : !(refused instanceof HubError)
          ? `the completion could not be sent: ${refused.message}`
          : REFUSED_FOR_GOOD.has(refused.code)
            ? `the hub refused the completion: ${refused.message}`
            : undefined;
      if (why) {
        const { workflowId, workOrderId, attemptToken } = outcome.payload;
        await this.report('task.fail', { workflowId, workOrderId, attemptToken, error: why.slice(0, 10_000), retryable: false }, assignment.attempt);
      }
    } finally {
      clearTimeout(fallback);
      this.running.delete(assignment.attemptToken);
      if (this.running.size === 0) this.idled();
    }
  }

  /**
   * Sends a completion or failure until the hub answers: retried across timeouts and reconnects.
   * Safe to repeat: a second report of the same attempt is refused as STALE_ATTEMPT, which after
   * a try that may have landed (its answer lost to a timeout or a dropped connection) is that
   * try's success when the refusal lists attempt number `attempt` as ended the way reported (the
   * attempt may have ended otherwise, the first try lost: its lease ran out). Resolves with the
   * hub's refusal, if it refused, or the error that kept the report from being sent.
   */
  private async report<E extends 'task.complete' | 'task.fail'>(event: E, payload: RequestOf<'agent', E>, attempt?: number): Promise<Error | undefined> {
    const outcome = event === 'task.complete' ? 'completed' : 'failed';
    const { workflowId, workOrderId, attemptToken } = payload as RequestOf<'agent', 'task.complete'>;
    const base = { workflowId, workOrderId, attemptToken, outcome } as const;
    let mayHaveTakenEffect = false;
    for (let delay = 100; !this.closed; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.registered();
        // Both reports have the same reply; the compiler cannot see that through E.
        const reply = (await this.connection.request(event, payload)) as ReplyOf<'agent', 'task.complete'>;
        this.listeners.emit('report', { ...base, accepted: true });
        if (reply.next) for (const assignment of reply.next) this.onCarriedOffer(assignment);
        return undefined;
      } catch (error) {
        // A hub that lists no attempts (an older one), or an attempt not known here: taken for landed, as before.
        const landed = (ended: HubError) => !ended.attempts || attempt === undefined || ended.attempts.some((run) => run.number === attempt && run.outcome === outcome);
        if (error instanceof HubError && error.code === 'STALE_ATTEMPT' && mayHaveTakenEffect && landed(error)) {
          this.listeners.emit('report', { ...base, accepted: true });
          return undefined;
        }
        if (!(error instanceof HubError) || !RETRYABLE_TRANSPORT.has(error.code)) {
          this.listeners.emit('report', { ...base, accepted: false, code: error instanceof HubError ? error.code : 'INTERNAL' });
          return error instanceof Error ? error : new Error(String(error));
        }
        mayHaveTakenEffect ||= mayHaveLanded(error.code);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** Resolves once the current connection is registered (at once when it is). */
  private registered(): Promise<void> {
    return this.isRegistered ? Promise.resolve() : new Promise((resolve) => this.waitingForRegistration.push(resolve));
  }

  private abort(attemptToken: string, reason: string): void {
    this.running.get(attemptToken)?.abort(reason);
    if (this.running.delete(attemptToken) && this.running.size === 0) this.idled();
  }

  /** The last running task ended: no heartbeat is due, and a finishing close() goes on. */
  private idled(): void {
    this.heartbeat.stop();
    for (const resolve of this.whenIdle) resolve();
    this.whenIdle.clear();
  }

  /**
   * Accepts a carried offer: a heartbeat for its token. A token the hub no longer holds (the
   * offer withdrawn meanwhile) aborts the handler.
   */
  private async accept(attemptToken: string, fallback: ReturnType<typeof setTimeout> | undefined): Promise<void> {
    try {
      await this.registered();
      if (!this.running.has(attemptToken)) return;
      const reply = await this.connection.request('agent.heartbeat', { attemptTokens: [attemptToken] });
      clearTimeout(fallback);
      for (const token of reply.lost) this.abort(token, 'the offer was withdrawn before it was accepted');
    } catch {
      // The fallback heartbeat tries again.
    }
  }

  private async beat(): Promise<void> {
    if (this.running.size === 0 || !this.connection.socket.connected) return;
    try {
      await this.registered();
      const reply = await this.connection.request('agent.heartbeat', { attemptTokens: [...this.running.keys()] });
      for (const token of reply.lost) this.abort(token, 'the lease was lost');
    } catch {
      // The next beat tries again; the lease covers a few missed ones.
    }
  }
}

/**
 * Connects an agent and registers it; a refused registration (bad options, say) closes the connection and throws.
 * @example const agent = await connectAgent({ url, token, agentId: 'loader-1', agentType: 'loading', capabilities: ['csv'] });
 */
export async function connectAgent(options: AgentOptions): Promise<AgentClient> {
  const agent = new AgentClient(await Connection.open('agent', options), options);
  try {
    await agent.register();
  } catch (error) {
    // Nobody gets this client: left open, its socket would reconnect (and be refused) for the life of the process.
    await agent.close();
    throw error;
  }
  return agent;
}
