/**
 * The live dashboard, run in the browser. It follows views, never whole workflows: the summary
 * view of each listed workflow, the agent pool, and a page of the selected workflow's orders, so
 * a workflow of 100,000 orders costs the page what one of ten does. The charts over time
 * (orders per interval, agents' load) are kept here from those views as they change.
 */
import { connectMonitor, type Mirror, type MirrorChange, type MonitorClient } from '../../../client-sdk/monitor.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import { viewName, type OrdersView, type SummaryView } from '../../../shared/schemas/views.ts';
import type { WorkflowHeader } from '../../../shared/schemas/workflow.ts';
import type { WorkOrderState } from '../../../shared/schemas/work-order.ts';
import { INTERVAL_MS, LoadTimelines, ThroughputTimeline } from './timeline.ts';
import { describeChange, esc, folded, renderAgents, renderOrders, renderWorkflows } from './view.ts';
import { renderWorkflowPanel } from './workflow-panel.ts';

const TOKEN_KEY = 'switchboard.token';
/** How many workflows the page follows (the most recently created), and how often it looks for new ones. */
const LISTED_WORKFLOWS = 50;
const LIST_EVERY_MS = 5000;
/** Orders shown for the selected workflow: the newest, in the chosen state. */
const ORDER_ROWS = 100;

/**
 * The token from `#token=` (a fragment never leaves the browser: no server or proxy log sees it)
 * or `?token=`, then removed from the address bar; else from this tab's storage.
 */
function token(): string | null {
  const url = new URL(location.href);
  const fragment = new URLSearchParams(url.hash.slice(1));
  const fromUrl = fragment.get('token') ?? url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    history.replaceState(null, '', url.pathname + url.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function askForToken(): void {
  document.getElementById('app')!.innerHTML =
    '<form id="login"><h2>Monitor token</h2><p class="muted">Paste a monitor or admin token (printed by <code>switchboard start</code>).</p>' +
    '<input name="token" autocomplete="off" autofocus><button>Open</button></form>';
  document.getElementById('login')!.addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, new FormData(event.target as HTMLFormElement).get('token') as string);
    location.reload();
  });
}

/** The most recently created workflows this token may see: one page, newest first. */
async function listWorkflows(secret: string): Promise<WorkflowHeader[]> {
  const query = new URLSearchParams({ order: 'desc', limit: String(LISTED_WORKFLOWS) });
  const response = await fetch(`/api/workflows?${query}`, { headers: { authorization: `Bearer ${secret}` } });
  if (!response.ok) throw new Error(`listing workflows: HTTP ${response.status}`);
  return ((await response.json()) as { items: WorkflowHeader[] }).items;
}

/** The summary views of the listed workflows, kept as the list changes. */
class FollowedWorkflows {
  readonly summaries = new Map<string, Mirror<SummaryView>>();

  constructor(private readonly monitor: MonitorClient) {}

  /** Follows the summary view of each workflow listed, and stops following those no longer listed. */
  async follow(ids: string[]): Promise<void> {
    const wanted = new Set(ids);
    for (const [id, mirror] of this.summaries) {
      if (wanted.has(id)) continue;
      this.summaries.delete(id);
      await this.monitor.unsubscribe(mirror.doc).catch(() => undefined);
    }
    for (const id of ids) {
      if (this.summaries.has(id)) continue;
      // A workflow archived or deleted since it was listed is skipped until the next listing.
      const mirror = await this.monitor.subscribe(id, { view: { kind: 'summary' } }).catch(() => undefined);
      if (mirror) this.summaries.set(id, mirror);
    }
  }
}

/**
 * Opens a workflow's HTML report in a new tab. The report needs the token, which a link cannot
 * send without putting it in an address: the page fetches it and opens what it got. The tab is
 * opened first, while the click still counts as the user's.
 */
async function openReport(href: string, secret: string, status: HTMLElement): Promise<void> {
  const tab = window.open('', '_blank');
  try {
    const response = await fetch(href, { headers: { authorization: `Bearer ${secret}` } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(new Blob([await response.arrayBuffer()], { type: 'text/html' }));
    if (tab) tab.location.href = url;
    else location.href = url;
    // The tab has read it by then; a reload of the report asks the dashboard again.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    tab?.close();
    status.textContent = `could not open the report: ${(error as Error).message}`;
  }
}

async function main(): Promise<void> {
  // A link with another token pasted into this tab changes only the fragment, which loads nothing: start again with it.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload();
  });
  const secret = token();
  const status = document.getElementById('status')!;
  if (!secret) {
    status.textContent = 'no token';
    return askForToken();
  }
  let monitor: MonitorClient;
  try {
    monitor = await connectMonitor({ url: location.origin, token: secret });
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    status.textContent = `refused: ${(error as Error).message}`;
    status.className = 'down';
    return askForToken();
  }
  const socket = monitor.connection.socket;
  const showStatus = () => {
    status.textContent = socket.connected ? 'live' : 'reconnecting…';
    status.className = socket.connected ? 'live' : 'down';
  };
  socket.on('connect', showStatus);
  socket.on('disconnect', showStatus);
  showStatus();

  const followed = new FollowedWorkflows(monitor);
  const agents = await monitor.subscribe('@agents');
  let selected: string | undefined;
  let orders: Mirror<OrdersView> | undefined;
  let stateFilter = '';
  let showFolded = false;
  const events: string[] = [];
  let scheduled = false;
  const throughput = new Map<string, ThroughputTimeline>();
  const loads = new LoadTimelines();
  const pool = () => Object.values((agents.state as Record<string, Agent> | undefined) ?? {});

  /** Adds a workflow's counts as they are now to its timeline. */
  const observeWorkflow = (id: string, now: number) => {
    const summary = followed.summaries.get(id)?.state;
    if (!summary) return;
    let timeline = throughput.get(id);
    if (!timeline) throughput.set(id, (timeline = new ThroughputTimeline()));
    timeline.observe(summary.workOrderCounts, now);
  };
  /** Every timeline, at each interval: those without news start their next interval too. */
  const observeAll = () => {
    const now = Date.now();
    for (const id of throughput.keys()) if (!followed.summaries.has(id)) throughput.delete(id);
    for (const id of followed.summaries.keys()) observeWorkflow(id, now);
    loads.observe(pool(), now);
  };

  const draw = () => {
    scheduled = false;
    const workflows = [...followed.summaries.values()].flatMap((m) => (m.state ? [m.state] : []));
    workflows.sort((a, b) => b.updatedAt - a.updatedAt);
    renderWorkflows(document.querySelector('#workflows tbody')!, workflows, selected, (id) => void select(id));
    const now = Date.now();
    const everyAgent = pool();
    renderAgents(document.querySelector('#agents tbody')!, everyAgent, loads, now, showFolded);
    const foldedAgents = everyAgent.filter((a) => folded(a, now)).length;
    const toggle = document.getElementById('offline-toggle')!;
    toggle.hidden = foldedAgents === 0;
    toggle.textContent = `${showFolded ? 'hide' : 'show'} ${foldedAgents} offline`;
    const current = workflows.find((w) => w.id === selected);
    renderWorkflowPanel(document.getElementById('workflow')!, current, current ? (throughput.get(current.id)?.list(now) ?? []) : []);
    const shown = orders?.state;
    document.getElementById('orders-title')!.innerHTML = current
      ? `Work orders · <span class="id">${esc(current.id)}</span> <span class="muted">${shown ? `newest ${shown.ids.length} of ${shown.total}` : ''}</span>`
      : 'Work orders';
    renderOrders(document.querySelector('#orders tbody')!, current ? shown : undefined);
    document.getElementById('counts')!.textContent = `${workflows.length} workflows · ${everyAgent.length} agents`;
    document.getElementById('events')!.innerHTML = events.map((e) => `<li>${e}</li>`).join('');
  };
  const redraw = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  };

  /** Numbers the calls of select(): only the latest one's page is shown. */
  let selections = 0;
  /** The view the latest select() asked for. */
  let wanted: string | undefined;
  /** Shows a page of the newest orders of a workflow, in the chosen state, instead of the one shown. */
  const select = async (id: string | undefined) => {
    const call = ++selections;
    const view = { kind: 'orders', limit: ORDER_ROWS, ...(stateFilter ? { state: stateFilter as WorkOrderState } : {}) } as const;
    wanted = id ? viewName(id, view) : undefined;
    selected = id;
    const previous = orders;
    orders = undefined;
    if (previous) await monitor.unsubscribe(previous.doc).catch(() => undefined);
    if (id) {
      const mirror = await monitor.subscribe(id, { view }).catch(() => undefined);
      if (call !== selections) {
        // Another workflow or filter was chosen meanwhile: this page is dropped, unless the latest
        // call asked for the same view, whose one mirror unsubscribing would end for both.
        if (mirror && mirror.doc !== wanted) await monitor.unsubscribe(mirror.doc).catch(() => undefined);
        return;
      }
      orders = mirror;
    }
    redraw();
  };
  document.getElementById('offline-toggle')!.addEventListener('click', () => {
    showFolded = !showFolded;
    redraw();
  });
  document.getElementById('workflow')!.addEventListener('click', (event) => {
    const link = (event.target as Element).closest<HTMLAnchorElement>('#report-link');
    if (!link) return;
    event.preventDefault();
    void openReport(link.href, secret, status);
  });
  document.getElementById('order-state')!.addEventListener('change', (event) => {
    stateFilter = (event.target as HTMLSelectElement).value;
    void select(selected);
  });

  let listing = false;
  const relist = async () => {
    // One listing at a time: a slow hub must not pile them up, nor have two follow() calls race.
    if (listing) return;
    listing = true;
    try {
      const listed = await listWorkflows(secret);
      await followed.follow(listed.map((w) => w.id));
      observeAll();
      const ids = [...followed.summaries.keys()];
      if (!selected || !ids.includes(selected)) {
        const newest = [...followed.summaries.values()].sort((a, b) => (b.state?.updatedAt ?? 0) - (a.state?.updatedAt ?? 0))[0];
        await select(newest?.state?.id);
      }
    } catch (error) {
      status.textContent = `could not list workflows: ${(error as Error).message}`;
    } finally {
      listing = false;
    }
    redraw();
  };
  monitor.on('change', (change: MirrorChange) => {
    if (change.doc === agents.doc) loads.observe(pool(), Date.now());
    else if (change.doc.endsWith('/summary')) observeWorkflow(change.doc.slice(0, -'/summary'.length), Date.now());
    for (const line of describeChange(change)) {
      events.unshift(line);
      if (events.length > 60) events.pop();
    }
    redraw();
  });
  await relist();
  setInterval(() => void relist(), LIST_EVERY_MS);
  setInterval(() => {
    observeAll();
    redraw();
  }, INTERVAL_MS);
  observeAll();
  draw();
}

void main();
