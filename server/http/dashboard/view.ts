import type { MirrorChange } from '../../../client-sdk/monitor.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { WorkOrder } from '../../../shared/schemas/work-order.ts';
import type { OrdersView } from '../../../shared/schemas/views.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';

/** What a row of the workflows table shows: a summary view holds it, and so does a workflow. */
type WorkflowRow = Pick<Workflow, 'id' | 'userQuery' | 'status' | 'progress' | 'workOrderCounts' | 'updatedAt'>;

/** Escapes text for HTML. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const bar = (percentage: number) => `<span class="bar"><span style="width:${Math.max(0, Math.min(100, percentage))}%"></span></span>${Math.round(percentage)}%`;
const pill = (state: string) => `<span class="pill s-${esc(state)}">${esc(state.replace('_', ' '))}</span>`;
const time = (ms: number | null) => (ms ? new Date(ms).toLocaleTimeString() : '');

/** The workflows table; clicking a row selects it. */
export function renderWorkflows(body: HTMLElement, workflows: WorkflowRow[], selected: string | undefined, select: (id: string) => void): void {
  body.innerHTML = workflows
    .map((w) => {
      const counts = Object.entries(w.workOrderCounts ?? {})
        .filter(([, n]) => n > 0)
        .map(([state, n]) => `${n} ${state}`)
        .join(', ');
      return `<tr class="selectable${w.id === selected ? ' selected' : ''}" data-workflow="${esc(w.id)}" data-status="${esc(w.status)}" data-progress="${w.progress}">
        <td>${esc(w.id)}</td><td>${esc(w.userQuery)}</td><td>${pill(w.status)}</td><td>${bar(w.progress)}</td><td>${esc(counts)}</td><td>${time(w.updatedAt)}</td></tr>`;
    })
    .join('');
  for (const row of body.querySelectorAll<HTMLElement>('tr[data-workflow]')) row.onclick = () => select(row.dataset.workflow!);
}

/** The agents table. */
export function renderAgents(body: HTMLElement, agents: Agent[]): void {
  body.innerHTML = agents
    .map(
      (a) => `<tr data-agent="${esc(a.id)}" data-status="${esc(a.status)}"><td>${esc(a.id)}</td><td>${esc(a.agentType)}</td><td>${pill(a.status)}</td>
        <td>${a.load} / ${a.maxConcurrentTasks}</td><td>${a.stats.completed} / ${a.stats.failed}</td><td>${esc(a.note ?? '')}</td></tr>`,
    )
    .join('');
}

/** The selected workflow's page of orders, newest first, as its orders view holds them. */
export function renderOrders(body: HTMLElement, page: OrdersView | undefined): void {
  if (!page) {
    body.innerHTML = '<tr><td colspan="6" class="muted">No workflow yet.</td></tr>';
    return;
  }
  body.innerHTML = page.ids.map((id) => orderRow(page.orders[id]!)).join('') || '<tr><td colspan="6" class="muted">No work orders.</td></tr>';
}

function orderRow(o: WorkOrder): string {
  return `<tr data-work-order="${esc(o.id)}" data-state="${esc(o.state)}" data-progress="${o.progress}"><td>${esc(o.id)}</td><td>${esc(o.taskType)}</td>
    <td>${pill(o.state)}</td><td>${esc(o.attempt?.agentId ?? o.history[o.history.length - 1]?.agentId ?? '')}</td><td>${bar(o.progress)}</td><td>${esc(o.message ?? o.error ?? '')}</td></tr>`;
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
