/** How big and how long each scenario runs. `full` is what the issue asks for; the others are cut down. */
export interface Scale {
  name: 'full' | 'quick' | 'smoke';
  /**
   * durationMs are per side (raw or hub), split over `rounds` alternating rounds; each open-loop
   * phase starts with warmupMs at the same rate that is not counted.
   */
  progress: { agents: number; rate: number; durationMs: number; warmupMs: number; rounds: number; saturation: { concurrency: number; durationMs: number; warmupMs: number } };
  /** primeMs: one open-loop run per side at the rate before the rounds, not counted (assignment.ts). */
  assignment: { agents: number; rate: number; durationMs: number; warmupMs: number; primeMs: number; rounds: number; saturation: { concurrency: number; durationMs: number; warmupMs: number } };
  push: { agents: number; rate: number; durationMs: number; warmupMs: number; saturation: { concurrency: number; durationMs: number; warmupMs: number } };
  /** primeMs: the progress load once before the first subscribers connect, not counted (fanout.ts). */
  fanout: { subscribers: number[]; durationMs: number; primeMs: number };
  persistence: { sizes: number[]; agents: number; progressChanges: number; completions: number; rounds: number; snapshotLoadRate: number };
  /** Idle agents of one task type in each pool, lifecycles per pool over `rounds` alternating rounds, `chains` in flight (placement.ts). */
  placement: { pools: number[]; lifecycles: number; rounds: number; chains: number };
  memory: { agents: number[] };
  restart: { orders: number };
  soak: Soak;
  bigWorkflow: BigWorkflow;
  cluster: Cluster;
  peer: Peer;
}

/**
 * The peer scenario (peer.ts), the hub beside BullMQ on redis-server, `rounds` rounds of each
 * workload alternating the two, with `workers` workers of `concurrency` slots: `bulk.jobs` jobs
 * created `bulk.chunk` at a time, then run (the whole bounded by `bulk.boundMs`); jobs created at
 * `open.rate` (the last completions bounded by `open.boundMs`); one job awaiting
 * `progress.updates` progress updates, stopped after `progress.capMs` if not all were sent.
 */
export interface Peer {
  rounds: number;
  workers: number;
  concurrency: number;
  bulk: { jobs: number; chunk: number; boundMs: number; primeJobs: number };
  open: { rate: number; durationMs: number; warmupMs: number; boundMs: number };
  progress: { updates: number; capMs: number };
}

/**
 * The cluster scenario (cluster.ts), beside a single hub: the progress rounds at `progress`'s sizes;
 * then `fanout.subscribersPerNode` subscribers on each node (and as many on the single hub)
 * while the same agents send progress at `fanout.rate`; then `failover.kills` kills of the leader,
 * each once the cluster has settled for `settleMs`, on the default lease unless `lease` is given.
 */
export interface Cluster {
  nodes: number;
  fanout: { subscribersPerNode: number; rate: number; durationMs: number; warmupMs: number; rounds: number };
  failover: { kills: number; settleMs: number; lease?: { leaseMs: number; leaseRenewMs: number; leaseCheckMs: number } };
}

/**
 * The big-workflow scenario (big-workflow.ts): one workflow of `orders` work orders, `agents` of
 * them running on agents that send progress at `rate`; phases of `phaseMs` alternate without and
 * with readers (`rounds` of each): `wholeDoc` and `summaryViews` monitors subscribing every
 * `waveMs`, and one socket and one HTTP reader fetching reports.
 */
export interface BigWorkflow {
  orders: number;
  agents: number;
  rate: number;
  phaseMs: number;
  warmupMs: number;
  rounds: number;
  wholeDoc: number;
  summaryViews: number;
  waveMs: number;
}

/**
 * The soak (soak.ts). Lifecycles at `rate` for `durationMs` in workflows of `ordersPerWorkflow`,
 * the hub's heap sampled every `sampleEveryMs`; the slope is fitted over the samples of the last
 * `windowMs`, none before `settleMs`. `history`: finished workflows produced and archived before
 * timing `restarts` starts of each kind; `reads`: workflow.summary requests at `rate`.
 */
export interface Soak {
  rate: number;
  ordersPerWorkflow: number;
  agents: number;
  durationMs: number;
  sampleEveryMs: number;
  settleMs: number;
  windowMs: number;
  /** The hub's keepFinishedMs during the lifecycles. */
  keepFinishedMs: number;
  history: { workflows: number; ordersPerWorkflow: number; keepFinishedMs: number };
  restarts: number;
  reads: { rate: number; durationMs: number; warmupMs: number };
}

export const SCALES: Record<Scale['name'], Scale> = {
  full: {
    name: 'full',
    progress: { agents: 500, rate: 10_000, durationMs: 12_000, warmupMs: 1000, rounds: 3, saturation: { concurrency: 1000, durationMs: 6000, warmupMs: 1000 } },
    assignment: { agents: 200, rate: 500, durationMs: 12_000, warmupMs: 1000, primeMs: 4000, rounds: 2, saturation: { concurrency: 200, durationMs: 6000, warmupMs: 1000 } },
    push: { agents: 200, rate: 500, durationMs: 5000, warmupMs: 1000, saturation: { concurrency: 400, durationMs: 5000, warmupMs: 1000 } },
    fanout: { subscribers: [20, 100], durationMs: 8000, primeMs: 4000 },
    persistence: { sizes: [1000, 100_000], agents: 100, progressChanges: 30_000, completions: 700, rounds: 7, snapshotLoadRate: 2000 },
    placement: { pools: [200, 5000], lifecycles: 14_000, rounds: 7, chains: 4 },
    memory: { agents: [1000, 5000] },
    restart: { orders: 100_000 },
    soak: {
      rate: 500,
      ordersPerWorkflow: 1000,
      agents: 100,
      durationMs: 600_000,
      sampleEveryMs: 60_000,
      settleMs: 120_000,
      windowMs: 480_000,
      keepFinishedMs: 60_000,
      history: { workflows: 1000, ordersPerWorkflow: 1000, keepFinishedMs: 1000 },
      restarts: 9,
      reads: { rate: 20, durationMs: 50_000, warmupMs: 1000 },
    },
    bigWorkflow: { orders: 100_000, agents: 100, rate: 500, phaseMs: 20_000, warmupMs: 1000, rounds: 2, wholeDoc: 10, summaryViews: 10, waveMs: 10_000 },
    cluster: { nodes: 3, fanout: { subscribersPerNode: 100, rate: 1000, durationMs: 16_000, warmupMs: 1000, rounds: 2 }, failover: { kills: 10, settleMs: 2000 } },
    peer: { rounds: 3, workers: 10, concurrency: 10, bulk: { jobs: 20_000, chunk: 1000, boundMs: 180_000, primeJobs: 2000 }, open: { rate: 1000, durationMs: 10_000, warmupMs: 1000, boundMs: 60_000 }, progress: { updates: 10_000, capMs: 60_000 } },
  },
  quick: {
    name: 'quick',
    progress: { agents: 100, rate: 2000, durationMs: 4000, warmupMs: 500, rounds: 2, saturation: { concurrency: 200, durationMs: 2000, warmupMs: 500 } },
    assignment: { agents: 50, rate: 100, durationMs: 4000, warmupMs: 500, primeMs: 1000, rounds: 2, saturation: { concurrency: 50, durationMs: 2000, warmupMs: 500 } },
    push: { agents: 50, rate: 100, durationMs: 2000, warmupMs: 500, saturation: { concurrency: 100, durationMs: 2000, warmupMs: 500 } },
    fanout: { subscribers: [5, 20], durationMs: 3000, primeMs: 1000 },
    persistence: { sizes: [1000, 10_000], agents: 50, progressChanges: 6000, completions: 300, rounds: 3, snapshotLoadRate: 1000 },
    placement: { pools: [200, 5000], lifecycles: 3000, rounds: 5, chains: 4 },
    memory: { agents: [200, 1000] },
    restart: { orders: 10_000 },
    // The full soak's proportions in a fifth of its time: samples, settling, window and keepFinishedMs.
    soak: {
      rate: 500,
      ordersPerWorkflow: 1000,
      agents: 100,
      durationMs: 120_000,
      sampleEveryMs: 12_000,
      settleMs: 24_000,
      windowMs: 96_000,
      keepFinishedMs: 12_000,
      history: { workflows: 100, ordersPerWorkflow: 1000, keepFinishedMs: 1000 },
      restarts: 5,
      reads: { rate: 20, durationMs: 10_000, warmupMs: 1000 },
    },
    bigWorkflow: { orders: 20_000, agents: 50, rate: 250, phaseMs: 8000, warmupMs: 500, rounds: 2, wholeDoc: 4, summaryViews: 4, waveMs: 4000 },
    cluster: { nodes: 3, fanout: { subscribersPerNode: 20, rate: 500, durationMs: 4000, warmupMs: 500, rounds: 1 }, failover: { kills: 3, settleMs: 1000 } },
    peer: { rounds: 2, workers: 10, concurrency: 10, bulk: { jobs: 5000, chunk: 1000, boundMs: 90_000, primeJobs: 1000 }, open: { rate: 1000, durationMs: 3000, warmupMs: 1000, boundMs: 30_000 }, progress: { updates: 3000, capMs: 20_000 } },
  },
  smoke: {
    name: 'smoke',
    progress: { agents: 10, rate: 200, durationMs: 500, warmupMs: 100, rounds: 1, saturation: { concurrency: 20, durationMs: 500, warmupMs: 200 } },
    assignment: { agents: 5, rate: 20, durationMs: 500, warmupMs: 100, primeMs: 200, rounds: 1, saturation: { concurrency: 5, durationMs: 500, warmupMs: 200 } },
    push: { agents: 5, rate: 50, durationMs: 500, warmupMs: 100, saturation: { concurrency: 10, durationMs: 500, warmupMs: 200 } },
    fanout: { subscribers: [2], durationMs: 500, primeMs: 200 },
    persistence: { sizes: [200, 1000], agents: 10, progressChanges: 200, completions: 40, rounds: 2, snapshotLoadRate: 200 },
    placement: { pools: [20, 200], lifecycles: 100, rounds: 2, chains: 2 },
    memory: { agents: [20, 50] },
    restart: { orders: 1000 },
    soak: {
      rate: 100,
      ordersPerWorkflow: 100,
      agents: 5,
      durationMs: 3000,
      sampleEveryMs: 500,
      settleMs: 600,
      windowMs: 2400,
      keepFinishedMs: 1000,
      history: { workflows: 10, ordersPerWorkflow: 100, keepFinishedMs: 1000 },
      restarts: 1,
      reads: { rate: 20, durationMs: 1000, warmupMs: 200 },
    },
    bigWorkflow: { orders: 3000, agents: 5, rate: 50, phaseMs: 1500, warmupMs: 200, rounds: 1, wholeDoc: 1, summaryViews: 1, waveMs: 1000 },
    // A short lease, so that the one failover takes a second or two, not the default lease's five.
    cluster: { nodes: 3, fanout: { subscribersPerNode: 2, rate: 100, durationMs: 500, warmupMs: 100, rounds: 1 }, failover: { kills: 1, settleMs: 200, lease: { leaseMs: 1500, leaseRenewMs: 300, leaseCheckMs: 150 } } },
    peer: { rounds: 1, workers: 10, concurrency: 10, bulk: { jobs: 500, chunk: 250, boundMs: 30_000, primeJobs: 100 }, open: { rate: 200, durationMs: 500, warmupMs: 200, boundMs: 10_000 }, progress: { updates: 200, capMs: 5000 } },
  },
};
