import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Namespace } from 'socket.io';
import { HubError } from '../../shared/errors.ts';
import { AgentStatus } from '../../shared/schemas/agent.ts';
import { WorkOrderState } from '../../shared/schemas/work-order.ts';
import { WorkflowStatus, type Workflow } from '../../shared/schemas/workflow.ts';
import { SHOWN_ONLY_STATUSES, shownAgentStatus } from '../../shared/shown-agent-status.ts';
import type { StateWriter } from '../state-writer.ts';
import type { WorkflowArchive } from '../store/archive.ts';
import type { Route } from './router.ts';

/** A Prometheus histogram with fixed buckets (in seconds). */
export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }

  /** Records one observation, in seconds. */
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= this.buckets[i]!) this.counts[i]!++;
  }

  /** The exposition lines for metric `name`. */
  lines(name: string): string[] {
    return [
      ...this.buckets.map((le, i) => `${name}_bucket{le="${le}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    ];
  }
}

/** A count of 0 for each of `keys`. */
const zeros = (keys: readonly string[]): Record<string, number> => Object.fromEntries(keys.map((key) => [key, 0]));

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Where the gauges are read from when /metrics is asked for. */
export interface MetricSources {
  hub: StateWriter;
  /** Where ended workflows go when they leave memory; they are counted too. */
  archive: WorkflowArchive;
  namespaces: Record<string, Namespace>;
  stalledSubscribers: () => number;
  /** Packets waiting unread in monitor connections' buffers. */
  queuedPackets: () => number;
}

/** The hub's counters and histograms, fed by the transports and the state writer. */
export class Metrics {
  readonly assignmentLatency = new Histogram(LATENCY_BUCKETS);
  readonly journalWrite = new Histogram(LATENCY_BUCKETS);
  journalRecords = 0;
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly sources: MetricSources) {
    this.loopDelay.enable();
  }

  /** Records a journal write of `records` records that took `ms`. */
  recordJournalWrite(ms: number, records: number): void {
    this.journalWrite.observe(ms / 1000);
    this.journalRecords += records;
  }

  /** The Prometheus text exposition of everything, read from the hub as it is now. */
  render(): string {
    const { hub, namespaces } = this.sources;
    const out: string[] = [];
    const gauge = (name: string, help: string, samples: Array<[string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...samples.map(([labels, value]) => `${name}${labels} ${value}`));
    };
    gauge('switchboard_connections', 'Connected sockets by role namespace.', Object.entries(namespaces).map(([role, nsp]) => [`{namespace="${role}"}`, nsp.sockets.size]));
    // Every state and status, at 0 when none is in it: a series that vanished would read as unknown, not 0.
    const orders = zeros(WorkOrderState.options);
    const workflows = zeros(WorkflowStatus.options);
    const count = (workflow: Pick<Workflow, 'status' | 'workOrderCounts'>) => {
      workflows[workflow.status]!++;
      for (const [state, n] of Object.entries(workflow.workOrderCounts)) orders[state]! += n;
    };
    // Archived ones too, as lists and `switchboard status` show them: else the counts drop when a workflow leaves memory.
    // One also still in memory (a crash between its archive write and leaving) is counted once, as archived.
    const archive = this.sources.archive;
    for (const workflow of hub.state.workflows.values()) if (archive.header(workflow.id) === undefined) count(workflow);
    // Known names only: a damaged index line's would be no label Prometheus could read.
    for (const [status, n] of archive.tally.workflows) if (Object.hasOwn(workflows, status)) workflows[status]! += n;
    for (const [state, n] of archive.tally.orders) if (Object.hasOwn(orders, state)) orders[state]! += n;
    gauge('switchboard_work_orders', 'Work orders by state, over all workflows (archived ones included).', Object.entries(orders).map(([s, n]) => [`{state="${s}"}`, n]));
    gauge('switchboard_workflows', 'Workflows by status (archived ones included).', Object.entries(workflows).map(([s, n]) => [`{status="${s}"}`, n]));
    // As the dashboard shows them: one waiting out its grace period (gone, or not back since a restart) keeps its work but is not connected.
    const agents = zeros([...AgentStatus.options, ...SHOWN_ONLY_STATUSES]);
    for (const agent of Object.values(hub.state.agents ?? {})) agents[shownAgentStatus(agent)]!++;
    gauge('switchboard_agents', 'Registered agents by status (disconnected: within graceMs of leaving, its work kept; closing: finishing its work to exit).', Object.entries(agents).map(([s, n]) => [`{status="${s}"}`, n]));
    out.push('# HELP switchboard_assignment_latency_seconds Time from a work order becoming ready (queued, its retry backoff over, or its paused workflow resumed) to its offer being pushed.');
    out.push('# TYPE switchboard_assignment_latency_seconds histogram', ...this.assignmentLatency.lines('switchboard_assignment_latency_seconds'));
    out.push('# HELP switchboard_journal_write_seconds Duration of one journal write (a batch of records).');
    out.push('# TYPE switchboard_journal_write_seconds histogram', ...this.journalWrite.lines('switchboard_journal_write_seconds'));
    out.push('# HELP switchboard_journal_records_total Records written to the journal.', '# TYPE switchboard_journal_records_total counter');
    out.push(`switchboard_journal_records_total ${this.journalRecords}`);
    out.push('# HELP switchboard_stalled_subscribers_total Monitors dropped to a resync for falling behind.', '# TYPE switchboard_stalled_subscribers_total counter');
    out.push(`switchboard_stalled_subscribers_total ${this.sources.stalledSubscribers()}`);
    gauge('switchboard_monitor_queued_packets', 'Packets waiting unread in monitor connections (bounded by maxQueuedPackets each).', [['', this.sources.queuedPackets()]]);
    out.push('# HELP nodejs_eventloop_delay_seconds Event-loop delay since the hub started.', '# TYPE nodejs_eventloop_delay_seconds summary');
    for (const q of [0.5, 0.99]) out.push(`nodejs_eventloop_delay_seconds{quantile="${q}"} ${this.loopDelay.percentile(q * 100) / 1e9}`);
    out.push(`nodejs_eventloop_delay_seconds_max ${this.loopDelay.max / 1e9}`);
    const memory = process.memoryUsage();
    gauge('process_resident_memory_bytes', 'Resident memory.', [['', memory.rss]]);
    gauge('nodejs_heap_used_bytes', 'V8 heap in use.', [['', memory.heapUsed]]);
    gauge('nodejs_heap_total_bytes', 'V8 heap reserved.', [['', memory.heapTotal]]);
    const cpu = process.cpuUsage();
    out.push('# HELP process_cpu_seconds_total User and system CPU time.', '# TYPE process_cpu_seconds_total counter');
    out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
    return out.join('\n') + '\n';
  }

  /** Stops sampling the event loop. */
  close(): void {
    this.loopDelay.disable();
  }
}

/** GET /metrics in the Prometheus text format (admin and unscoped monitor tokens). */
export function metricsRoute(metrics: Metrics): Route {
  return {
    method: 'GET',
    pattern: /^\/metrics$/,
    roles: ['admin', 'monitor'],
    handle: ({ grant }) => {
      // Counts of every workflow and order: more than a token scoped to some workflows may see.
      if (grant?.workflows) throw new HubError('FORBIDDEN', 'the metrics count every workflow; they need an admin token or a monitor token without a workflows scope');
      return { body: metrics.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
    },
  };
}
