import { parseArgs } from 'node:util';
import type { Agent } from '../../shared/schemas/agent.ts';
import type { WorkflowHeader } from '../../shared/schemas/workflow.ts';
import type { ClusterInfo } from '../cluster/cluster-node.ts';
import { getFromHub, hubAddress, progress, progressDone, table } from './common.ts';

export const STATUS_HELP = `switchboard status — the nodes, workflows and agents of a running hub

Usage: switchboard status [--url URL] [--token TOKEN] [--data-dir DIR] [--json]

  --url URL       the hub (default http://127.0.0.1:4700)            [SWITCHBOARD_URL]
  --token TOKEN   an admin or monitor token (default: from the data directory's tokens.json) [SWITCHBOARD_TOKEN]
  --data-dir DIR  where to find tokens.json (default ./.switchboard)  [SWITCHBOARD_DATA_DIR]
  --json          print JSON instead of tables
`;

const time = (ms: number | null) => (ms ? new Date(ms).toISOString().slice(11, 19) : '');

/** `switchboard status`: prints the hub's workflows (all pages) and agents. */
export async function status(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { url: { type: 'string' }, token: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void process.stdout.write(STATUS_HELP);
  const address = hubAddress(values);
  const health = (await (await getFromHub(address, '/healthz')).json()) as { uptimeMs: number };
  const cluster = (await (await getFromHub(address, '/cluster')).json()) as ClusterInfo;
  const workflows: WorkflowHeader[] = [];
  let cursor: string | null = null;
  do {
    progress(`reading workflows… ${workflows.length}`);
    const page = (await (await getFromHub(address, `/api/workflows?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json()) as {
      items: WorkflowHeader[];
      nextCursor: string | null;
    };
    workflows.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  const agents: Agent[] = [];
  cursor = null;
  do {
    progress(`reading agents… ${agents.length}`);
    const page = (await (await getFromHub(address, `/api/agents?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)).json()) as {
      items: Agent[];
      nextCursor: string | null;
    };
    agents.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  progressDone();
  if (values.json) return void process.stdout.write(JSON.stringify({ uptimeMs: health.uptimeMs, cluster, workflows, agents }, null, 2) + '\n');
  const counts = (w: WorkflowHeader) =>
    Object.entries(w.workOrderCounts)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ');
  const out = [
    `Hub ${address.url}: up ${Math.round(health.uptimeMs / 1000)} s, ${workflows.length} workflows, ${agents.length} agents`,
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
    table(['WORKFLOW', 'STATUS', 'PROGRESS', 'WORK ORDERS', 'UPDATED', 'QUERY'], workflows.map((w) => [w.id, w.status, `${Math.round(w.progress)}%`, counts(w), time(w.updatedAt), w.userQuery.slice(0, 60)])),
    '',
    table(['AGENT', 'STATUS', 'LOAD', 'DONE/FAILED', 'TYPE', 'NOTE'], agents.map((a) => [a.id, a.status, `${a.load}/${a.maxConcurrentTasks}`, `${a.stats.completed}/${a.stats.failed}`, a.agentType, a.note ?? ''])),
  ];
  process.stdout.write(out.join('\n') + '\n');
}
