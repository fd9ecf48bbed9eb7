import { parseArgs } from 'node:util';
import type { Agent } from '../../shared/schemas/agent.ts';
import type { WorkflowHeader } from '../../shared/schemas/workflow.ts';
import { percentText } from '../../shared/percent-text.ts';
import { shownAgentStatus } from '../../shared/shown-agent-status.ts';
import { shownWorkflowStatus } from '../../shared/shown-workflow-status.ts';
import type { ClusterInfo } from '../cluster/cluster-node.ts';
import { allPages, CliError, counted, dayAndClock, getFromHub, HUB_FLAGS, hubAddress, integer, progress, progressDone, refuseEmptyFlags, table } from './common.ts';

export const STATUS_HELP = `switchboard status — the nodes, workflows and agents of a running hub

Usage: switchboard status [--url URL] [--token TOKEN] [--data-dir DIR] [--json]
       switchboard status --watch [--interval MS] [--count N] [WORKFLOW...] [--url URL] [--token TOKEN] [--data-dir DIR]

  --url URL       the hub, http(s)://host:port without a path, checked as the SDK checks it
                  (default: the URL the hub holding the data directory noted, else
                  http://127.0.0.1:$SWITCHBOARD_PORT if set and not 0, else http://127.0.0.1:4700)
                                                                     [SWITCHBOARD_URL]
  --token TOKEN   an admin or monitor token (default: one of the hub's list: DIR/tokens.json if
                  --data-dir DIR is given and has one, else SWITCHBOARD_TOKENS,
                  SWITCHBOARD_TOKENS_FILE, else the data directory's tokens.json, else the
                  cluster's in SWITCHBOARD_POSTGRES)
                                                                     [SWITCHBOARD_TOKEN]
  --data-dir DIR  where to find tokens.json and the running hub's URL (default ./.switchboard)
                                                                     [SWITCHBOARD_DATA_DIR]
  --json          print JSON instead of tables
  --watch         follow the workflows live (the named ones, else every pending or in-progress one,
                  those created later included) until Ctrl-C: per workflow its progress, its orders by
                  state, the orders completed per second over the last interval, and its failures;
                  the cluster's nodes when there are several. On a terminal the screen is redrawn in
                  place; otherwise a line per workflow whose line changed, e.g.
                  12:00:01 wf_x in_progress 40% queued=3 running=2 completed=10 failed=1 2.0/s
  --interval MS   how often --watch refreshes, 100 to 3600000 (default 1000)
  --count N       stop --watch after N refreshes (default: at SIGINT or SIGTERM)
`;

// Local time, as --watch shows it: UTC here beside local there would read as two different moments.
const time = (ms: number | null) => (ms ? dayAndClock(ms) : '');

/** `switchboard status`: prints the hub's workflows (all pages) and agents. */
export async function status(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...HUB_FLAGS,
      json: { type: 'boolean' },
      watch: { type: 'boolean' },
      interval: { type: 'string' },
      count: { type: 'string' },
    },
  });
  if (values.help) return void process.stdout.write(STATUS_HELP);
  refuseEmptyFlags(values, ['interval', 'count']);
  if (!values.watch && (positionals.length > 0 || values.interval !== undefined || values.count !== undefined)) {
    throw new CliError('workflow ids, --interval and --count go with --watch');
  }
  if (values.watch && values.json) throw new CliError('--watch prints lines (off a terminal, one per change), not --json');
  const address = await hubAddress(values);
  if (values.watch) {
    const intervalMs = integer('--interval', values.interval) ?? 1000;
    const count = integer('--count', values.count);
    // Above an hour a timer would overflow (past 2^31 ms Node fires it at once): refresh without pause.
    if (intervalMs < 100 || intervalMs > 3_600_000) throw new CliError(`--interval must be from 100 to 3600000 (ms), got ${intervalMs}`);
    if (count !== undefined && count < 1) throw new CliError(`--count must be at least 1, got ${count}`);
    const { watchStatus } = await import('./status-watch.ts');
    return watchStatus({ address, intervalMs, count, workflowIds: positionals });
  }
  const health = (await (await getFromHub(address, '/healthz')).json()) as { uptimeMs: number };
  const cluster = (await (await getFromHub(address, '/cluster')).json()) as ClusterInfo;
  const workflows = await allPages<WorkflowHeader>(address, '/api/workflows', (read) => progress(`reading workflows… ${read}`));
  const agents = await allPages<Agent>(address, '/api/agents', (read) => progress(`reading agents… ${read}`));
  progressDone();
  if (values.json) return void process.stdout.write(JSON.stringify({ uptimeMs: health.uptimeMs, cluster, workflows, agents }, null, 2) + '\n');
  const counts = (w: WorkflowHeader) =>
    Object.entries(w.workOrderCounts)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => (state === 'queued' && w.unservable ? `${n} ${state} (${w.unservable} no agent can take)` : `${n} ${state}`))
      .join(', ');
  const out = [
    `Hub ${address.url}: up ${Math.round(health.uptimeMs / 1000)} s, ${counted(workflows.length, 'workflow')}, ${counted(agents.length, 'agent')}`,
    '',
    ...(cluster.epoch > 0
      ? [
          table(
            ['NODE', 'ROLE', 'URL', 'VERSION', 'SEEN'],
            cluster.nodes.map((n) => [`${n.nodeId}${n.nodeId === cluster.nodeId ? ' (this)' : ''}`, n.role, n.url, String(n.version), `${Math.round(n.seenMsAgo / 1000)} s ago`]),
          ),
          '',
        ]
      : []),
    table(['WORKFLOW', 'STATUS', 'PROGRESS', 'WORK ORDERS', 'UPDATED', 'QUERY'], workflows.map((w) => [w.id, shownWorkflowStatus(w.status, Boolean(w.paused)), percentText(w.progress), counts(w), time(w.updatedAt), w.userQuery.slice(0, 60)])),
    '',
    table(['AGENT', 'STATUS', 'LOAD', 'DONE/FAILED', 'TYPE', 'NOTE'], agents.map((a) => [a.id, shownAgentStatus(a), `${a.load}/${a.maxConcurrentTasks}`, `${a.stats.completed}/${a.stats.failed}`, a.agentType, a.note ?? ''])),
  ];
  process.stdout.write(out.join('\n') + '\n');
}
