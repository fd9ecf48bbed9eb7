/**
 * A load-generator process: agents, subscribers, a lifecycle driver, a cluster's failover writer or
 * one side of the peer scenario (the hub's clients, or BullMQ's),
 * as the runner asks over IPC. Kept apart from the hub and from the runner so that what it costs is its own CPU, which
 * the runner reports next to the hub's. Started by BenchChild.start('generator', './generator.ts').
 */
import { AgentPool } from './roles/agent-pool.ts';
import { BigReaders } from './roles/big-readers.ts';
import { FailoverWriter } from './roles/failover-writer.ts';
import { hubRig, rawRig, runOpenPhase, runSaturationPhase, type LifecycleRig, type OpenPhase, type RigOptions, type SaturationPhase } from './roles/lifecycle.ts';
import { MonitorPool } from './roles/monitor-pool.ts';
import { awaitedProgress, bulkLifecycle, openLoop, type AwaitedOptions, type BulkOptions, type OpenOptions, type PeerSide } from './roles/peer-load.ts';
import { SoakLoad, type SoakPhase } from './roles/soak-load.ts';
import { readSummaries } from './roles/summary-reads.ts';
import { serveParent, type IpcRequest } from './processes.ts';

/** Agent pools by name, so that a run can add connections to those it already holds. */
const pools = new Map<string, AgentPool>();
const pool = (r: IpcRequest) => {
  const name = String(r.pool ?? 'default');
  if (!pools.has(name)) pools.set(name, new AgentPool());
  return pools.get(name)!;
};
const monitors = new MonitorPool();
const soak = new SoakLoad();
const bigReaders = new BigReaders();
const writer = new FailoverWriter();
/** Lifecycle rigs by server side ('hub' or 'raw'), kept from `lifecycle.connect` until the generator exits. */
const rigs = new Map<string, LifecycleRig>();
const rig = (r: IpcRequest) => {
  const found = rigs.get(String(r.side));
  if (!found) throw new Error(`no lifecycle rig for side ${String(r.side)}: send lifecycle.connect first`);
  return found;
};
/** The peer scenario's side, hub or BullMQ, from `peer.connect` until the generator exits. */
let peer: PeerSide | undefined;
const peerSide = () => {
  if (!peer) throw new Error('no peer side: send peer.connect first');
  return peer;
};
/** The fields of a request, as the role expects them (the runner is the only sender). */
const args = <T>(request: IpcRequest): T => request as unknown as T;

const exposedGc = (globalThis as { gc?: () => void }).gc;
/** A full collection; launch.ts starts every generator with --expose-gc, so its absence is a broken setup. */
function collect(): null {
  if (!exposedGc) throw new Error('start the generator with --expose-gc');
  exposedGc();
  return null;
}

/**
 * Runs a measured phase after a full collection. The generator is the measuring instrument: a
 * mark-compact of its own during a phase stalls its sends, and open-loop latency counts that
 * stall against whichever server the phase measured (~20 ms each). Started with --expose-gc
 * (launch.ts). A phase on a schedule the runner set (`startEpochMs`) must not start late: the
 * runner asks for the collection (`gc`) before it sets the schedule.
 */
const measured =
  <T>(phase: (request: IpcRequest) => Promise<T>) =>
  (request: IpcRequest): Promise<T> => {
    if (request.startEpochMs === undefined) collect();
    return phase(request);
  };

serveParent(
  {
    /** A full collection now, before the runner sets a shared schedule (see `measured`). */
    gc: collect,
    'agents.connect': (r) => pool(r).connect(args<Parameters<AgentPool['connect']>[0]>(r)),
    'agents.progressOpen': measured((r) => pool(r).progressOpen(args<Parameters<AgentPool['progressOpen']>[0]>(r))),
    'agents.progressClosed': measured((r) => pool(r).progressClosed(args<Parameters<AgentPool['progressClosed']>[0]>(r))),
    'agents.close': (r) => {
      pool(r).close();
      pools.delete(String(r.pool ?? 'default'));
    },
    'monitors.connect': (r) => monitors.connect(args<Parameters<MonitorPool['connect']>[0]>(r)),
    'monitors.arm': (r) => monitors.arm(args<Parameters<MonitorPool['arm']>[0]>(r)),
    'monitors.collect': (r) => monitors.collect(args<Parameters<MonitorPool['collect']>[0]>(r)),
    'monitors.close': () => monitors.close(),
    'lifecycle.connect': async (r) => {
      const side = String(r.side);
      if (rigs.has(side)) throw new Error(`a lifecycle rig for side ${side} is already connected`);
      rigs.set(side, await (side === 'hub' ? hubRig : rawRig)(args<RigOptions>(r)));
    },
    'lifecycle.open': measured((r) => runOpenPhase(rig(r), args<OpenPhase>(r))),
    'lifecycle.saturate': measured((r) => runSaturationPhase(rig(r), args<SaturationPhase>(r))),
    'soak.connect': (r) => soak.connect(args<Parameters<SoakLoad['connect']>[0]>(r)),
    'soak.run': measured((r) => soak.run(args<SoakPhase>(r))),
    'soak.close': () => soak.close(),
    'readers.connect': (r) => bigReaders.connect(args<Parameters<BigReaders['connect']>[0]>(r)),
    'readers.start': (r) => bigReaders.start(args<Parameters<BigReaders['start']>[0]>(r)),
    'readers.stop': () => bigReaders.stop(),
    'summaries.read': measured((r) => readSummaries(args<Parameters<typeof readSummaries>[0]>(r))),
    'writer.start': (r) => writer.start(args<Parameters<FailoverWriter['start']>[0]>(r)),
    'writer.firstAckAfter': (r) => writer.firstAckAfter(args<Parameters<FailoverWriter['firstAckAfter']>[0]>(r)),
    'writer.acknowledged': () => writer.acknowledged(),
    'writer.close': () => writer.close(),
    // BullMQ is loaded only by the generator that drives it.
    'peer.connect': async (r) => {
      if (peer) throw new Error('a peer side is already connected');
      if (r.side === 'hub') peer = await (await import('./roles/peer-hub.ts')).HubPeer.connect(String(r.url), String(r.prefix));
      else if (r.side === 'raw') peer = new (await import('./roles/peer-raw.ts')).RawPeer(String(r.url));
      else peer = new (await import('./roles/peer-bullmq.ts')).BullmqPeer(Number(r.port));
    },
    'peer.bulk': measured((r) => bulkLifecycle(peerSide(), args<BulkOptions>(r))),
    'peer.open': measured((r) => openLoop(peerSide(), args<OpenOptions>(r))),
    'peer.progress': measured((r) => awaitedProgress(peerSide(), args<AwaitedOptions>(r))),
  },
  { pid: process.pid },
  async () => {
    await writer.close();
    for (const agents of pools.values()) agents.close();
    monitors.close();
    soak.close();
    bigReaders.close();
    for (const lifecycle of rigs.values()) lifecycle.close();
    await peer?.close();
  },
);
