import type { MirrorChange } from '../../../client-sdk/monitor.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import { shownAgentStatus } from '../../../shared/shown-agent-status.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { OrdersView } from '../../../shared/schemas/views.ts';
import type { Workflow, WorkflowPause } from '../../../shared/schemas/workflow.ts';
import { loadSparkline } from './charts.ts';
import { percentText } from '../../../shared/percent-text.ts';
import { lastAttempt } from '../../../shared/attempt-budget.ts';
import { esc } from './escape.ts';
import type { LoadTimelines } from './timeline.ts';

export { esc };

/** Agents offline longer than this fold away behind a "show N offline" toggle. */
export const FOLD_OFFLINE_AFTER_MS = 5 * 60_000;

/** What a row of the workflows table shows: a summary view holds it, and so does a workflow. */
type WorkflowRow = Pick<Workflow, 'id' | 'userQuery' | 'status' | 'progress' | 'workOrderCounts' | 'updatedAt'> & { unservable?: number; paused?: WorkflowPause | null };

/** A progress bar with its percentage. */
export const bar = (percentage: number) => `<span class="bar"><span style="width:${Math.max(0, Math.min(100, percentage))}%"></span></span>${percentText(percentage)}`;
/** A state or status, coloured by its name. */
export const pill = (state: string, title = '') => `<span class="pill s-${esc(state)}"${title ? ` title="${esc(title)}"` : ''}>${esc(state.replaceAll('_', ' '))}</span>`;
const time = (ms: number | null) => (ms ? new Date(ms).toLocaleTimeString() : '');

/** A `paused` pill beside a paused workflow's status (who paused it, when and why in its title), or nothing. */
export const pausedPill = (paused: WorkflowPause | null | undefined) =>
  paused ? ` ${pill('paused', `paused by ${paused.by} at ${new Date(paused.at).toLocaleString()}${paused.reason === null ? '' : `: ${paused.reason}`}`)}` : '';

/** The workflows table; clicking a row selects it. */
export function renderWorkflows(body: HTMLElement, workflows: WorkflowRow[], selected: string | undefined, select: (id: string) => void): void {
  body.innerHTML = workflows
    .map((w) => {
      const counts = Object.entries(w.workOrderCounts ?? {})
        .filter(([, n]) => n > 0)
        .map(([state, n]) => (state === 'queued' && w.unservable ? `${n} queued (${w.unservable} no agent can take)` : `${n} ${state}`))
        .join(', ');
      return `<tr class="selectable${w.id === selected ? ' selected' : ''}" data-workflow="${esc(w.id)}" data-status="${esc(w.status)}" data-progress="${w.progress}">
        <td title="${esc(w.id)}">${esc(w.id)}</td><td title="${esc(w.userQuery)}">${esc(w.userQuery)}</td><td>${pill(w.status)}${pausedPill(w.paused)}</td><td>${bar(w.progress)}</td><td>${esc(counts)}</td><td>${time(w.updatedAt)}</td></tr>`;
    })
    .join('');
  for (const row of body.querySelectorAll<HTMLElement>('tr[data-workflow]')) row.onclick = () => select(row.dataset.workflow!);
}


/** Whether an agent has been offline long enough to fold away. */
export function folded(agent: Agent, now: number): boolean {
  return agent.status === 'offline' && typeof agent.offlineSince === 'number' && now - agent.offlineSince > FOLD_OFFLINE_AFTER_MS;
}

/** How long since `since`, briefly: 40 s, 12 min, 3 h. */
function ago(since: number, now: number): string {
  const seconds = Math.max(0, Math.round((now - since) / 1000));
  return seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`;
}

/** The agents table by id, those offline for long left out unless `showFolded`, with each agent's load over the last minutes. */
export function renderAgents(body: HTMLElement, agents: Agent[], loads: LoadTimelines, now: number, showFolded: boolean): void {
  const shown = (showFolded ? agents : agents.filter((a) => !folded(a, now))).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  body.innerHTML = shown
    .map((a) => {
      const status = shownAgentStatus(a);
      const since = status === 'disconnected' ? a.disconnectedSince! : status === 'offline' ? a.offlineSince : null;
      const title = status === 'disconnected' ? `connection lost ${ago(since!, now)} ago; it keeps its work until its grace period ends` : '';
      return `<tr data-agent="${esc(a.id)}" data-status="${esc(status)}" data-load="${a.load}"><td title="${esc(a.id)}">${esc(a.id)}</td><td>${esc(a.agentType)}</td>
        <td>${pill(status, title)}${typeof since === 'number' ? ` <span class="muted ago">${ago(since, now)}</span>` : ''}</td>
        <td class="load">${loadSparkline(a.id, loads.list(a.id, now), a.maxConcurrentTasks)} ${a.load} / ${a.maxConcurrentTasks}</td>
        <td>${a.stats.completed} / ${a.stats.failed}</td><td title="${esc(a.note ?? '')}">${esc(a.note ?? '')}</td></tr>`;
    })
    .join('');
}

/** The selected workflow's page of orders, newest first, as its orders view holds them. */
export function renderOrders(body: HTMLElement, page: OrdersView | undefined): void {
  if (!page) {
    body.innerHTML = '<tr><td colspan="8" class="muted">No workflow yet.</td></tr>';
    return;
  }
  body.innerHTML = page.ids.map((id) => orderRow(page.orders[id]!)).join('') || '<tr><td colspan="8" class="muted">No work orders.</td></tr>';
}

/** The error an order ended with, or else the newest its attempts gave. */
export function lastError(o: WorkOrder): string {
  if (o.error) return o.error;
  for (let i = o.history.length - 1; i >= 0; i--) if (o.history[i]!.error) return o.history[i]!.error!;
  return '';
}

/** What a queued order no agent can take waits for, in words. */
function waitingFor(waiting: NonNullable<WorkOrder['waiting']>): string {
  if (waiting.reason === 'all_declined') return `every agent that can take it declined it${waiting.retryAt === undefined ? '' : `; offered to them again at ${new Date(waiting.retryAt).toISOString()}`}`;
  return waiting.taskType ? `no connected agent takes task type ${waiting.taskType}` : `no connected agent holds all of ${(waiting.missing ?? []).join(', ')}`;
}

function orderRow(o: WorkOrder): string {
  // The attempt in flight, or else the last one started; none before the first. A completed
  // order's last error is an earlier attempt's: shown, but dimmed.
  const attempt = o.attempt?.number ?? o.attempts;
  const error = lastError(o);
  return `<tr data-work-order="${esc(o.id)}" data-state="${esc(o.state)}" data-progress="${o.progress}" data-attempt="${attempt}"><td title="${esc(o.id)}">${esc(o.id)}</td><td>${esc(o.taskType)}</td>
    <td>${pill(o.state)}${o.waiting ? ` ${pill(o.waiting.reason, waitingFor(o.waiting))}` : ''}</td><td>${attempt ? `${attempt} / ${lastAttempt(o)}` : '–'}</td><td>${esc(o.attempt?.agentId ?? o.history[o.history.length - 1]?.agentId ?? '')}</td><td>${bar(o.progress)}</td>
    <td title="${esc(o.message ?? '')}">${esc(o.message ?? '')}</td><td class="error${o.state === 'completed' ? ' past' : ''}" title="${esc(error)}">${esc(error)}</td></tr>`;
}

/**
 * One line per notable change in a patch of a followed view or the agent pool: a workflow's
 * status (its summary view), an order's state (an orders view), an agent's status.
 */
export function describeChange(change: MirrorChange): string[] {
  const at = new Date().toLocaleTimeString();
  if (change.snapshot) return [];
  const workflowId = change.doc.split('/')[0]!;
  const lines: string[] = [];
  for (const op of change.ops) {
    if (op.op === 'remove') continue;
    const path = op.path.split('/');
    if (change.doc.endsWith('/summary') && op.path === '/status') lines.push(`${at} <b>${esc(workflowId)}</b> → ${esc(op.value)}`);
    else if (path[1] === 'orders' && path[3] === 'state') lines.push(`${at} <b>${esc(path[2])}</b> → ${esc(op.value)}`);
    else if (path[1] === 'orders' && path.length === 3 && op.op === 'add') lines.push(`${at} <b>${esc(path[2])}</b> ${esc((op.value as WorkOrder).state)}`);
    else if (change.doc === '@agents' && path[2] === 'status') lines.push(`${at} agent <b>${esc(path[1])}</b> → ${esc(op.value)}`);
  }
  return lines;
}
