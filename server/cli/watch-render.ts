import type { SummaryView } from '../../shared/schemas/views.ts';
import type { WorkOrderState } from '../../shared/schemas/work-order.ts';
import type { ClusterInfo } from '../cluster/cluster-node.ts';
import { percentText } from '../../shared/percent-text.ts';
import { shownWorkflowStatus } from '../../shared/shown-workflow-status.ts';
import { printable } from '../../shared/printable.ts';
import { clock, table } from './common.ts';

/** One workflow as `status --watch` shows it at one refresh. */
export interface WorkflowSample {
  id: string;
  userQuery: string;
  status: SummaryView['status'];
  progress: number;
  counts: Record<WorkOrderState, number>;
  /** Queued orders no connected agent can take. */
  unservable: number;
  /** Paused (workflow.pause): its orders are not offered. */
  paused: boolean;
  failureReason: string | null;
  /** When it was taken, ms since the epoch. */
  at: number;
  /** Orders completed per second since the previous sample; null at the first. */
  throughput: number | null;
}

/** A sample of a summary view at `at`; throughput from the completed orders since `previous`. */
export function sample(view: SummaryView, at: number, previous: WorkflowSample | undefined): WorkflowSample {
  const completed = view.workOrderCounts.completed;
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  return {
    id: view.id,
    userQuery: printable(view.userQuery),
    status: view.status,
    progress: view.progress,
    counts: { ...view.workOrderCounts },
    unservable: view.unservable ?? 0,
    paused: (view.paused ?? null) !== null,
    failureReason: view.failureReason === undefined || view.failureReason === null ? null : printable(view.failureReason),
    at,
    throughput: previous && seconds > 0 ? Math.max(0, completed - previous.counts.completed) / seconds : null,
  };
}

/** The states always shown, in the order an order moves through them; the others when not zero. */
const SHOWN: WorkOrderState[] = ['queued', 'running', 'completed', 'failed'];
const OTHERS: WorkOrderState[] = ['pending', 'blocked', 'offered', 'cancelled'];

const rate = (throughput: number | null) => (throughput === null ? '-/s' : `${throughput.toFixed(1)}/s`);
const percent = (progress: number) => percentText(progress);

/** The orders of a sample as `state=n` pairs: the main states always, the others when not zero. */
function countPairs(s: WorkflowSample): string {
  const pairs = [...SHOWN, ...OTHERS.filter((state) => s.counts[state] > 0)].map((state) => `${state}=${s.counts[state]}`);
  if (s.unservable > 0) pairs.push(`unservable=${s.unservable}`);
  if (s.paused) pairs.push('paused');
  return pairs.join(' ');
}

/** The orders of a sample in words: `3 queued, 2 running, 10 completed, 1 failed`, then the other states not at zero. */
function countWords(s: WorkflowSample): string {
  return [...SHOWN, ...OTHERS.filter((state) => s.counts[state] > 0)]
    .map((state) => (state === 'queued' && s.unservable > 0 ? `${s.counts[state]} queued (${s.unservable} no agent can take)` : `${s.counts[state]} ${state}`))
    .join(', ');
}

/** What a plain line says of a workflow, without the time: printed again only when this changes. */
export function plainState(s: WorkflowSample): string {
  return `${s.id} ${s.status} ${percent(s.progress)} ${countPairs(s)} ${rate(s.throughput)}`;
}

/** A plain line: `12:00:01 wf_x in_progress 40% queued=3 running=2 completed=10 failed=1 2.0/s`. */
export function plainLine(s: WorkflowSample): string {
  return `${clock(s.at)} ${plainState(s)}${s.status === 'failed' && s.failureReason ? ` reason=${JSON.stringify(s.failureReason)}` : ''}`;
}

/** What a plain line says of a cluster's node (its role and address; versions move too often). */
export function plainNode(node: ClusterInfo['nodes'][number]): string {
  return `node ${node.nodeId} ${node.role} ${node.url}`;
}

/** A bar of `width` cells, filled in proportion to `progress` (0–100). */
export function bar(progress: number, width = 20): string {
  const filled = Math.round((Math.min(100, Math.max(0, progress)) / 100) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** What the terminal screen shows: a header, the cluster's nodes (when more than one), the workflows and their failures. */
export interface Screen {
  url: string;
  at: number;
  intervalMs: number;
  cluster: ClusterInfo | undefined;
  workflows: WorkflowSample[];
  /** Why the last refresh could not reach the hub, if it could not. */
  problem: string | undefined;
}

/** The screen as lines, cut to `columns` wide and `rows` high. */
export function screenLines(screen: Screen, columns: number, rows: number): string[] {
  const lines = [
    `Switchboard ${screen.url}  ${clock(screen.at)}  every ${screen.intervalMs / 1000} s  (Ctrl-C to stop)`,
    screen.problem ? `! ${screen.problem}` : '',
  ];
  const nodes = screen.cluster?.nodes ?? [];
  if (nodes.length > 1) {
    lines.push(
      ...table(
        ['NODE', 'ROLE', 'URL', 'VERSION', 'SEEN'],
        nodes.map((n) => [n.nodeId, n.role, n.url, String(n.version), `${Math.round(n.seenMsAgo / 1000)} s ago`]),
      ).split('\n'),
      '',
    );
  }
  if (screen.workflows.length === 0) lines.push('no pending or in-progress workflows yet');
  else {
    // A row per workflow, its orders on the line under it: the columns of eight states would not fit 80 wide.
    const rowsOf = screen.workflows.map((s) => [s.id, shownWorkflowStatus(s.status, s.paused), `${bar(s.progress)} ${percent(s.progress).padStart(4)}`, rate(s.throughput), s.userQuery]);
    const [header, ...rows] = table(['WORKFLOW', 'STATUS', 'PROGRESS', 'COMPLETED/S', 'QUERY'], rowsOf).split('\n');
    lines.push(header!);
    screen.workflows.forEach((s, i) => {
      lines.push(rows[i]!, `  orders: ${countWords(s)}`);
      if (s.status === 'failed' && s.failureReason) lines.push(`  failed: ${s.failureReason}`);
    });
  }
  const cut = lines.map((line) => (line.length > columns ? `${line.slice(0, Math.max(0, columns - 1))}…` : line));
  if (cut.length <= rows) return cut;
  return [...cut.slice(0, Math.max(0, rows - 1)), `… ${cut.length - rows + 1} more lines (a taller terminal shows them)`];
}
