import { once } from 'node:events';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { batchWebSocketWrites } from './transport/cork.ts';
import { createServer, type IncomingMessage, type RequestListener, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Server } from 'socket.io';
import { contract, CONTROL_READS } from '../shared/contract.ts';
import { HubError } from '../shared/errors.ts';
import type { TokenGrant } from '../shared/schemas/tokens.ts';
import { DataFiles } from './data-files.ts';
import { HubDirectory } from './hub-directory.ts';
import { StateWriter, type ReadonlyHubState } from './state-writer.ts';
import { apiRoutes } from './http/api.ts';
import { dashboardRoutes } from './http/dashboard.ts';
import { Metrics, metricsRoute } from './http/metrics.ts';
import { createRouter, refuseAll } from './http/router.ts';
import { browsersRefuse } from './http/blocked-ports.ts';
import { OpenConnections } from './http/open-connections.ts';
import { createLogger, type Logger } from './logger.ts';
import { HubOptions, type HubOptionsInput, type ResolvedHubOptions } from './options.ts';
import { issuesText } from './zod-issues.ts';
import { logJournalWrite, logNotices, logSnapshot } from './operator-log.ts';
import { Archiver } from './archiver.ts';
import { AutoDocumentation } from './reports/auto-documentation.ts';
import { EmbeddedStore } from './store/embedded-store.ts';
import { PostgresStore } from './store/postgres/postgres-store.ts';
import { loadOrCreateClusterTokens } from './store/postgres/pg-tokens.ts';
import { DEFAULT_PARTITION } from './store/postgres/schema.ts';
import { TokenSync } from './cluster/token-sync.ts';
import { ClusterNode, type ClusterInfo } from './cluster/cluster-node.ts';
import { clusterRoute } from './http/cluster.ts';
import type { ResumePoint, SnapshotEvent, Store } from './store/store.ts';
import { loadOrCreateTokens, looseTokenFileMode, looseTokenFileWarning, PRIVATE_DIR_MODE, readDataDirTokens, readTokens, saveTokens, TOKENS_FILE, TokenRegistry } from './transport/auth.ts';
import { AgentTransport } from './transport/agent.ts';
import { LoginThrottle } from './transport/login-throttle.ts';
import { clientAddresses } from './transport/client-address.ts';
import { hostGuard, isLoopbackHost } from './transport/allowed-hosts.ts';
import { controlHandlers } from './transport/control.ts';
import { hubParser } from './transport/encoded-json.ts';
import { jsonpRefusal, secureEngineAnswers } from './http/engine-answers.ts';
import { monitorHandlers } from './transport/monitor.ts';
import { PatchStream } from './transport/patch-stream.ts';
import { Transfers } from './transport/transfers.ts';
import { ReportRenderer } from './reports/report-renderer.ts';
import { ViewStreams } from './transport/view-streams.ts';
import { bindNamespace, sessionOf } from './transport/namespaces.ts';
import { WorkflowReads } from './workflow-reads.ts';
import { makeDirectory } from './make-directory.ts';
import { embeddedCommand } from './embedded-dispatch.ts';

export { HubOptions, type HubOptionsInput } from './options.ts';
export type { Store } from './store/store.ts';
export type { ReadonlyHubState } from './state-writer.ts';
export type { ClusterInfo } from './cluster/cluster-node.ts';
export { EmbeddedStore } from './store/embedded-store.ts';
export { HubError } from '../shared/errors.ts';
export { HUB_V8_FLAGS, tuneV8ForHub } from './v8-tuning.ts';

/**
 * A cluster node's connect or query unanswered for the lease's term, and at least this long, is
 * given up (an append's outcome is then unknown): a connection that died without a word would
 * otherwise hold every later write, or a follower's takeover, while a PostgreSQL that is only slow
 * under load is given two seconds at least.
 */
const QUERY_TIMEOUT_FLOOR_MS = 2000;

/** Replaceable parts of a hub, for embedding programs (and tests that need a failing disk). */
export interface HubParts {
  /** A pino-compatible logger; by default JSON lines on stdout at `logLevel`. */
  logger?: Logger;
  /** Where state is kept; by default the embedded journal and lowdb snapshot in `dataDir`. */
  store?: Store;
  /**
   * The clock (ms since the epoch) for timestamps, leases and timeouts. By default Date.now, with
   * leases, deadlines, grace periods and backoffs timed on the monotonic clock; a clock given here times those too.
   */
  clock?: () => number;
  /**
   * An HTTP server of your application to share. socket.io attaches to it (its `/socket.io/`
   * requests never reach your handler); your handler passes the requests it does not serve to
   * `hub.handle(req, res)`; you call `listen` (`port` and `host` are then ignored) and close it. The hub's
   * `close()` takes socket.io off it again, and `handle` answers 503 from then on.
   */
  server?: HttpServer;
}

/** A hub that is listening: where to reach it, its tokens, and how to stop it. */
export interface RunningHub {
  /** Base URL, e.g. http://127.0.0.1:4700 (with a shared `server`: '' until it listens). */
  readonly url: string;
  readonly port: number;
  /** Serves the hub's HTTP routes (API, metrics, dashboard), or 404; for a shared `server`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The tokens in force (generated ones included), read-only: `reloadTokens()` changes them. */
  readonly tokens: readonly TokenGrant[];
  /** Whether the tokens were generated by this start. */
  tokensCreated: boolean;
  options: ResolvedHubOptions;
  /**
   * The workflows, the agent pool and their versions: live, and read-only here (writing to them is
   * a compile error). Every change is a command through `dispatch`, journaled before it is acknowledged.
   */
  readonly state: ReadonlyHubState;
  /** Runs a command through the hub's single writer; resolves with its reply (a copy, whose empty arrays are shared and frozen) once it is journaled. */
  dispatch: StateWriter['dispatch'];
  /** Resolves once every change applied so far is on disk. */
  settle(): Promise<void>;
  log: Logger;
  /**
   * Reads the tokens again from where they came from (tokensFile, the data directory's
   * tokens.json, or a cluster's PostgreSQL) and disconnects connections whose token is gone.
   * Resolves with how many tokens are in force. (A cluster node also applies every change to its
   * tokens in PostgreSQL as it is made.)
   */
  reloadTokens(): Promise<number>;
  /** This node's place in its cluster (a single hub is its own leader, epoch 0). */
  cluster(): ClusterInfo;
  /** Counters about the hub's connections and streams. */
  stats(): { stalledSubscribers: number };
  /** Stops listening, finishes pending writes, snapshots and releases the data directory. */
  close(): Promise<void>;
}

/** The events of an HTTP server socket.io (engine.io) listens to once attached. */
const ATTACH_EVENTS = ['request', 'upgrade', 'close', 'listening'] as const;

/** What socket.io changed on a server as it attached: the listeners it added, and the request listeners it took off to wrap. */
type Attachment = ReadonlyMap<(typeof ATTACH_EVENTS)[number], { added: Function[]; wrapped: Function[] }>;

/** What attaching changed, from the server's raw listeners before and after. */
function attachment(server: HttpServer, before: ReadonlyMap<(typeof ATTACH_EVENTS)[number], Function[]>): Attachment {
  return new Map(
    [...before].map(([event, had]) => {
      const after = server.rawListeners(event);
      return [event, { added: after.filter((listener) => !had.includes(listener)), wrapped: had.filter((listener) => !after.includes(listener)) }];
    }),
  );
}

/**
 * Takes socket.io off an application's server: removes the listeners it added and puts back the
 * request listeners it had wrapped (engine.io replaces them with one that calls them), in place.
 * Listeners the application added since are left as they are. Left attached, a closed hub's
 * engine would still answer `/socket.io/` (and keep the hub in memory), and a hub attached to
 * the server later would never get its connections.
 */
function detach(server: HttpServer, attached: Attachment): void {
  for (const [event, { added, wrapped }] of attached) {
    if (event !== 'request' || wrapped.length === 0) {
      for (const listener of added) server.removeListener(event, listener as (...args: unknown[]) => void);
      continue;
    }
    // The wrapper stands where the listeners it wraps were (raw listeners: a `once` stays one).
    const current = server.rawListeners(event);
    server.removeAllListeners(event);
    for (const listener of current.flatMap((listener) => (listener === added[0] ? wrapped : added.includes(listener) ? [] : [listener]))) {
      server.on(event, listener as (...args: unknown[]) => void);
    }
  }
}

/** A hub without a cluster, described as one: its own leader, at epoch 0. */
function single(nodeId: string, url: string, version: number): ClusterInfo {
  return { nodeId, role: 'leader', leader: { nodeId, url }, epoch: 0, version, nodes: [{ nodeId, url, role: 'leader', version, seenMsAgo: 0 }] };
}

/** How long a closing hub's HTTP connections that are neither answered nor gone may stay (a half-sent request: Node would wait a minute). */
const STRAGGLERS_CUT_AFTER_MS = 1000;

/**
 * Starts a hub: loads the state from `dataDir`, then serves socket.io namespaces and HTTP.
 * @example const hub = await createHub({ port: 0, dataDir: './data', tokens }); console.log(hub.url);
 */
export async function createHub(input: HubOptionsInput = {}, parts: HubParts = {}): Promise<RunningHub> {
  const parsed = HubOptions.safeParse(input);
  if (!parsed.success) throw new HubError('VALIDATION', `invalid hub options: ${issuesText(parsed.error)}`);
  const options = parsed.data;
  // A shared server listens after createHub returns: a node could not tell clients where it is.
  if (options.postgres && parts.server && (!options.nodeId || !options.advertiseUrl)) {
    throw new HubError('VALIDATION', 'a cluster node on a shared server needs nodeId and advertiseUrl: it does not listen yet when it joins the cluster');
  }
  const logger = parts.logger ?? createLogger(options.logLevel);
  /** What to undo at close (or when start-up fails half-way), newest first. */
  const stops: Array<() => unknown> = [];
  /** Runs the stops in turn; past `givenUp`, each is started but not waited for. */
  const stopAll = async (givenUp?: Promise<void>) => {
    for (const stop of stops.reverse()) await (givenUp ? Promise.race([stop(), givenUp]) : stop());
  };
  const http = parts.server ?? createServer();
  // Until the hub's routes are ready, every request is told to come back (the router replaces this).
  let serve: RequestListener = refuseAll(new HubError('UNAVAILABLE', 'the hub is starting'));
  const connections = parts.server ? undefined : new OpenConnections(http);
  if (!parts.server) {
    http.on('request', (req, res) => {
      connections!.answer(req, res);
      serve(req, res);
    });
    // The port first: a start that cannot have it leaves the data directory as it found it (no
    // tokens.json, journal or lock written). The error keeps Node's code (EADDRINUSE, EACCES).
    http.listen(options.port, options.host);
    await once(http, 'listening');
    // Closing socket.io closes the server too; this is for a start that fails before it is attached.
    stops.push(() => (http.listening ? new Promise<void>((done) => http.close(() => done())) : undefined));
  }
  let writer: StateWriter;
  let files: DataFiles;
  let hubDirectory: HubDirectory;
  let loaded: { grants: TokenGrant[]; created: boolean };
  const dataDir = resolve(options.dataDir);
  const onWarning = (message: string) => logger.warn(message);
  const onSnapshot = (event: SnapshotEvent) => logSnapshot(logger, event);
  const snapshotTrigger = { snapshotAfterBytes: options.snapshotAfterBytes, snapshotJournalRatio: options.snapshotJournalRatio };
  // Connects only when first used (the tokens of a cluster, then the store's open).
  const postgres = options.postgres
    ? new PostgresStore({ url: options.postgres, partition: DEFAULT_PARTITION, dataDir, ...snapshotTrigger, truncateDamagedJournal: options.truncateDamagedJournal, queryTimeoutMs: Math.max(options.leaseMs, QUERY_TIMEOUT_FLOOR_MS), onWarning, onSnapshot })
    : undefined;
  // A cluster node's tokens are the cluster's, in PostgreSQL, unless it is given its own.
  const clusterTokens = options.tokens || options.tokensFile ? undefined : postgres;
  // At start, generated tokens are only written once the data directory is this hub's (see below).
  // A reload only reads: a tokens.json gone missing must not quietly become new tokens that lock every client out.
  const tokenSource = async (reload: boolean) =>
    options.tokens
      ? { grants: options.tokens, created: false }
      : options.tokensFile
        ? { grants: readTokens(options.tokensFile), created: false }
        : clusterTokens
          ? loadOrCreateClusterTokens(clusterTokens.pool, clusterTokens.partition)
          : reload
            ? { grants: readDataDirTokens(dataDir), created: false }
            : loadOrCreateTokens(dataDir, false);
  // The file the tokens are read from, if any: one others may read is warned of at start and each reload.
  const tokensFile = options.tokens ? undefined : (options.tokensFile ?? (clusterTokens ? undefined : join(dataDir, TOKENS_FILE)));
  const warnIfLoose = () => {
    const mode = tokensFile && looseTokenFileMode(tokensFile);
    if (mode) logger.warn({ file: tokensFile, mode }, looseTokenFileWarning(tokensFile, mode));
  };
  // Assigned once the namespaces exist; journal writes before that (start-up recovery) go unmeasured.
  let metrics: Metrics | undefined;
  const store =
    parts.store ??
    postgres ??
    new EmbeddedStore({ dataDir, fsync: options.fsync, ...snapshotTrigger, truncateDamagedJournal: options.truncateDamagedJournal, onWarning, onSnapshot });
  try {
    // Everything that can be refused for a bad setting is checked before the data directory is made or taken.
    try {
      await postgres?.prepare();
      loaded = await tokenSource(false);
    } catch (error) {
      await postgres?.pool.end();
      throw error;
    }
    // Made for the owner alone: the journal and reports hold the workflows' data, tokens.json the tokens.
    try {
      makeDirectory(dataDir, PRIVATE_DIR_MODE);
    } catch (error) {
      // Named as the setting it is: Node's message gives only a path and a code.
      throw new HubError('VALIDATION', `dataDir ${dataDir} cannot be created: ${(error as Error).message}`);
    }
    // An existing file in its place was refused only at the lock, by Node's ENOTDIR on a lock file's name.
    if (!statSync(dataDir).isDirectory()) throw new HubError('VALIDATION', `dataDir ${dataDir} is not a directory`);
    // Another user's (or a read-only) directory was refused only at the lock, by a bare EACCES on a temporary file's name.
    try {
      accessSync(dataDir, constants.R_OK | constants.W_OK | constants.X_OK);
    } catch (error) {
      throw new HubError('VALIDATION', `dataDir ${dataDir} cannot be written by this user (${(error as Error).message}); run the hub as the directory's owner, or give it a directory this user can write`);
    }
    hubDirectory = await HubDirectory.open(dataDir);
    files = await DataFiles.open(options.dataRoots ?? [process.cwd(), dataDir], hubDirectory);
    writer = await StateWriter.open({
      store,
      ...(parts.clock ? { now: parts.clock } : {}),
      settings: {
        outputRoot: resolve(dataDir, 'workflows'),
        kpiHistoryLimit: options.kpiHistoryLimit,
        dataHistoryLimit: options.dataHistoryLimit,
        agingMs: options.agingMs,
        graceMs: options.graceMs,
        forgetAgentsAfterMs: options.forgetAgentsAfterMs,
        backoffBaseMs: options.backoffBaseMs,
        backoffMaxMs: options.backoffMaxMs,
        declinedRetryMs: options.declinedRetryMs,
      },
      onError: (error, context) => logger.error({ err: error }, context),
      onWritesRecovered: (failed) => logger.warn({ failed }, 'journal writes succeed again'),
      onJournalWrite: (ms, records) => {
        metrics?.recordJournalWrite(ms, records);
        logJournalWrite(logger, ms, records);
      },
      // A cluster node starts as a follower; it leads once it holds the lease.
      follower: postgres !== undefined,
    });
    // Now that the store holds the directory's lock: a start refused before (the directory is
    // another hub's, its journal is damaged) leaves no tokens behind.
    if (loaded.created && !clusterTokens) {
      try {
        saveTokens(dataDir, loaded.grants);
      } catch (error) {
        await writer.close();
        throw error;
      }
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  // The patch stream's resume point, once it exists: a clean stop keeps it for the next start (see Store.close).
  let resumeAtClose: (() => ResumePoint | undefined) | undefined;
  stops.push(() => writer.close(resumeAtClose));
  writer.onCommit((batch) => logNotices(logger, batch.effects));
  warnIfLoose();
  warnIfUnread(logger, dataDir, tokensFile, options.tokens ? 'its tokens option (SWITCHBOARD_TOKENS or the config file)' : clusterTokens ? "the cluster's PostgreSQL" : `the file ${tokensFile}`);
  const { grants, created } = loaded;
  // Frozen: changing the list an embedding program is handed would change nothing the hub checks.
  let grantsInForce: readonly TokenGrant[] = Object.freeze([...grants]);
  const tokens = new TokenRegistry(grants, new LoginThrottle(options.failedLogins));
  const addressOf = clientAddresses(options.trustedProxies);
  // The names the hub is reached by without configuration (a shared server's `host` is the application's to choose).
  const ownNames = [...(parts.server ? [] : [options.host]), ...(options.advertiseUrl ? [new URL(options.advertiseUrl).hostname.replace(/^\[|\]$/g, '')] : [])];
  // Unset: guarded where rebinding is the only way in, a hub on a loopback address; over the network it answers to any name.
  const allowedHosts = options.allowedHosts ?? (!parts.server && isLoopbackHost(options.host) ? [] : '*');
  const hostRefusal = hostGuard(allowedHosts, ownNames, logger, addressOf);

  // Kept once known, so the address still reads right after close (e.g. to restart on the same port).
  let bound: AddressInfo | null = null;
  const address = () => (bound ??= (http.address() as AddressInfo | null) ?? null);
  const urlOf = () => {
    const at = address();
    if (!at) return '';
    const host = at.address === '::' || at.address === '0.0.0.0' ? '127.0.0.1' : at.address;
    return `http://${host.includes(':') ? `[${host}]` : host}:${at.port}`;
  };
  try {
    // For uptime, a duration within this run: the monotonic clock, which a step of the wall clock does not move.
    const startedAt = performance.now();
    // The listeners socket.io puts on the server, so that a shared one is given back as it was.
    const listenersBefore = new Map(ATTACH_EVENTS.map((event) => [event, http.rawListeners(event)]));
    const io = new Server(http, {
      maxHttpBufferSize: options.maxHttpBufferSize,
      serveClient: false,
      parser: hubParser,
      // Every session starts with a handshake: refusing those refuses a foreign Host all of socket.io.
      allowRequest: (req, answer) => {
        const refused = hostRefusal(req) ?? jsonpRefusal(req);
        answer(refused?.message, refused === undefined);
      },
    });
    secureEngineAnswers(io);
    // Taken now: listeners the application adds later are its own, and stay at close.
    const attached = attachment(http, listenersBefore);
    batchWebSocketWrites(io);
    stops.push(() =>
      parts.server
        ? // The application owns its server: only the hub's connections end, and socket.io lets go of it.
          (io.disconnectSockets(true), io.engine.close(), detach(parts.server, attached))
        : // Closing the transport (not each socket) lets clients reconnect to the next hub.
          new Promise<void>((done) => {
            void io.close(() => done());
            connections!.close(STRAGGLERS_CUT_AFTER_MS);
          }),
    );
    const reads = new WorkflowReads(writer, store.archive, options.agingMs);
    const renderer = new ReportRenderer();
    // A rolled-back (or reloaded) version's number is given to other changes: its kept reports no longer describe it.
    writer.onRollback(() => renderer.forgetAll());
    stops.push(() => renderer.close());
    const archiver = new Archiver(writer, store.archive, reads, {
      keepFinishedMs: options.keepFinishedMs,
      retentionMs: options.retentionMs,
      intervalMs: options.sweepIntervalMs,
    }, logger, renderer);
    stops.push(() => archiver.close());
    // Assigned once the node listens (it must know its URL to lead); until then it follows.
    let cluster: ClusterNode | undefined;
    const writersOnly = () =>
      postgres && !cluster?.leading
        ? {
            code: 'NOT_LEADER' as const,
            message: cluster?.damage && !cluster.leaderAddress ? `this node is a follower and no node leads: ${cluster.damage.message}` : 'this node is a follower: writes go to the leader',
            leader: cluster?.leaderAddress ?? null,
          }
        : undefined;
    // The main namespace serves nothing and needs no token: a client that joined it (no namespace in its URL) would wait for answers that never come.
    const noNamespace = { code: 'VALIDATION', message: 'no namespace named: connect to /control, /agent or /monitor' };
    io.of('/').use((_socket, next) => next(Object.assign(new Error(noNamespace.message), { data: noNamespace })));
    const common = { tokens, rateLimit: options.rateLimit, maxUnreadBytes: options.maxUnreadBytes, log: logger, addressOf };
    const transfers = new Transfers();
    stops.push(() => transfers.close());
    const controlParts = { hub: writer, reads, archiver, files, hubDirectory, openLineageProducer: options.openLineageProducer, renderer, transfers };
    bindNamespace(io.of('/control'), contract.control, controlHandlers(controlParts), { ...common, roles: ['admin'], redirect: writersOnly, reads: CONTROL_READS });
    const agents = new AgentTransport(writer, logger, files, reads, (waitedMs) => metrics?.assignmentLatency.observe(waitedMs / 1000));
    bindNamespace(io.of('/agent'), contract.agent, agents.handlers(), {
      ...common,
      roles: ['agent'],
      redirect: writersOnly,
      onDisconnect: (session, socket) => agents.onDisconnect(session, socket),
    });
    writer.onCommit((batch) => agents.run(batch.effects));
    const monitorNamespace = io.of('/monitor');
    const patches = new PatchStream(monitorNamespace, writer, {
      intervalMs: options.patchIntervalMs,
      resumeVersions: options.resumeVersions,
      maxQueuedPackets: options.maxQueuedPackets,
    }, transfers);
    stops.push(() => patches.close());
    resumeAtClose = () => patches.resumePoint();
    archiver.onDeleted((workflowIds) => patches.deleted(workflowIds));
    const views = new ViewStreams(monitorNamespace, writer, patches);
    stops.push(() => views.close());
    const autoDocumentation = new AutoDocumentation(writer, reads, logger, hubDirectory, renderer);
    stops.push(() => autoDocumentation.close());
    bindNamespace(monitorNamespace, contract.monitor, monitorHandlers({ hub: writer, reads, stream: patches, views, renderer, transfers }), { ...common, roles: ['monitor', 'admin'] });
    /** Puts a token list in force and closes the connections whose grant it no longer holds. */
    const applyGrants = (next: TokenGrant[]) => {
      tokens.replace(next);
      grantsInForce = Object.freeze([...next]);
      let disconnected = 0;
      for (const nsp of [io.of('/control'), io.of('/agent'), monitorNamespace]) {
        for (const socket of nsp.sockets.values()) {
          const { grant } = sessionOf(socket);
          if (tokens.holds(grant)) continue;
          // A token gone is told so, and clients do not come back; one whose grant changed (a scope
          // widened or narrowed) loses the transport only, so that clients reconnect under the new grant.
          if (tokens.has(grant.token)) socket.conn.close();
          else socket.disconnect(true);
          disconnected++;
        }
      }
      logger.info({ tokens: next.length, disconnected }, 'tokens reloaded');
    };
    // The cluster's tokens, kept up to date; reloads go through it too, so that reads are applied in order.
    const sync = clusterTokens
      ? new TokenSync({
          url: clusterTokens.url,
          partition: clusterTokens.partition,
          // As often as a follower looks at the lease: PostgreSQL is back for both at about the same time.
          retryMs: options.leaseCheckMs,
          onGrants: (next) => {
            if (JSON.stringify(next) !== JSON.stringify(grantsInForce)) applyGrants(next);
          },
          log: logger,
        })
      : undefined;
    if (sync) {
      stops.push(() => sync.close());
      await sync.start();
    }
    const live = metrics = new Metrics({
      hub: writer,
      archive: store.archive,
      namespaces: { control: io.of('/control'), agent: io.of('/agent'), monitor: monitorNamespace },
      stalledSubscribers: () => patches.stalledCount,
      queuedPackets: () => patches.queuedPackets(),
    });
    stops.push(() => live.close());
    const clusterInfo = (): ClusterInfo =>
      cluster?.info() ?? single(options.nodeId ?? 'single', urlOf(), writer.lastSeq);
    const router = createRouter([...apiRoutes(writer, reads, renderer, startedAt, () => (store as Store).writeFailure?.()), clusterRoute(clusterInfo), metricsRoute(live), ...dashboardRoutes()], tokens, logger, addressOf, hostRefusal);
    // socket.io answers its own path first; the router serves everything else (a shared server's
    // own handler calls it for what it does not serve).
    serve = router;
    // A sweep that ran its most timers goes on in the next turn, after the I/O waiting then.
    const sweep = (): Promise<void> =>
      writer.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'sweeper' } }).then(
        (swept) => void (swept.more && setImmediate(sweep)),
        (error: Error) => {
          if (!(error instanceof HubError && error.code === 'UNAVAILABLE')) logger.error({ err: error }, 'sweep failed');
        },
      );
    // After the I/O waiting at that moment: a hub that was paused (a VM, SIGSTOP, a long stall)
    // first reads the heartbeats and answers that arrived meanwhile, then judges leases and offers.
    const sweeper = setInterval(() => setImmediate(sweep), options.sweepIntervalMs);
    sweeper.unref();
    stops.push(() => clearInterval(sweeper));
    // The archive's index is read now that the hub serves (requests that need it wait for it).
    store.archive.ready().catch((error: Error) => logger.error({ err: error }, 'archive index could not be read'));

    if (postgres) {
      const writers = [io.of('/control'), io.of('/agent')];
      const node = new ClusterNode(
        postgres,
        writer,
        { nodeId: options.nodeId ?? urlOf().replace(/^http:\/\//, ''), advertiseUrl: options.advertiseUrl ?? urlOf(), leaseMs: options.leaseMs, renewMs: options.leaseRenewMs, checkMs: options.leaseCheckMs },
        // Closing the connection (not the socket) lets the SDK reconnect, be refused NOT_LEADER and find the leader.
        () => writers.forEach((nsp) => nsp.sockets.forEach((socket) => socket.conn.close())),
        logger,
        // The leader's deletions reach this node's monitors as its own do: a deleted id may be taken again.
        (workflowIds) => archiver.forgetDeleted(workflowIds),
      );
      postgres.onFencedOff = () => node.fencedOff();
      stops.push(() => node.close());
      await node.start();
      cluster = node;
    }
    logger.info({ url: urlOf(), dataDir, workflows: writer.state.workflows.size }, parts.server ? 'hub attached' : 'hub listening');
    const port = address()?.port;
    if (port !== undefined && browsersRefuse(port)) logger.warn({ port }, 'browsers and fetch() refuse this port: the SDKs connect, but no browser opens the dashboard; choose another port for it');

    let closing: Promise<void> | undefined;
    const close = async () => {
      serve = refuseAll(new HubError('UNAVAILABLE', 'the hub is closed'));
      // A cluster node's lease is no longer renewed once it closes: past its term, a query PostgreSQL
      // never answers (cut off without a reset) must not hold the close. What is left is given up as
      // a crash would; the fence, in PostgreSQL, still refuses a write that arrives late.
      let term: NodeJS.Timeout | undefined;
      const termOver = postgres && new Promise<void>((resolve) => (term = setTimeout(resolve, options.leaseMs)));
      void termOver?.then(() => logger.warn({ leaseMs: options.leaseMs }, "closing: PostgreSQL did not answer within the lease's term; the rest of the close is not waited for"));
      try {
        await stopAll(termOver);
      } finally {
        clearTimeout(term);
      }
      logger.info('hub closed');
    };
    return {
      get url() {
        return urlOf();
      },
      get port() {
        return address()?.port ?? 0;
      },
      handle: (req, res) => serve(req, res),
      get tokens() {
        return grantsInForce;
      },
      tokensCreated: created,
      options,
      get state() {
        return writer.state;
      },
      // Checked first: an embedding program's command has not been through the transport's checks.
      dispatch: async (command) => {
        const checked = embeddedCommand(command);
        // As for a client: a workflow whose reports would go among the hub's files could never write one.
        const { outputFolder } = checked.input as { outputFolder?: unknown };
        if (checked.type === 'workflow.create' && typeof outputFolder === 'string') await hubDirectory.requireOutputFolder(outputFolder);
        return writer.dispatch(checked);
      },
      settle: () => writer.settle(),
      log: logger,
      reloadTokens: async () => {
        if (sync) await sync.refresh();
        else {
          applyGrants((await tokenSource(true)).grants);
          warnIfLoose();
        }
        return grantsInForce.length;
      },
      cluster: clusterInfo,
      stats: () => ({ stalledSubscribers: patches.stalledCount }),
      close: () => (closing ??= close()),
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * A tokens.json an earlier start left in the data directory, while this hub's tokens come from
 * elsewhere: the CLI given the directory reads it first, and its tokens may be refused.
 */
function warnIfUnread(logger: Logger, dataDir: string, tokensFile: string | undefined, source: string): void {
  const file = join(dataDir, TOKENS_FILE);
  if (tokensFile === file || !existsSync(file)) return;
  logger.warn({ file }, `${file} is not this hub's token list (its tokens come from ${source}), but the CLI given --data-dir ${dataDir} reads it first: delete it or move it aside, unless you mean to start a hub on this directory with it again`);
}
