/**
 * The live dashboard, run in the browser. It follows every document the token may see over the
 * monitor namespace (the same SDK mirror a Node monitor uses) and redraws on each change.
 */
import { connectMonitor, type MirrorChange } from '../../../client-sdk/monitor.ts';
import type { Agent } from '../../../shared/schemas/agent.ts';
import type { Workflow } from '../../../shared/schemas/workflow.ts';
import { describeChange, esc, renderAgents, renderOrders, renderWorkflows } from './view.ts';

const TOKEN_KEY = 'switchboard.token';

/** The token from `?token=` (then removed from the address bar) or from this tab's storage. */
function token(): string | null {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
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

async function main(): Promise<void> {
  const secret = token();
  const status = document.getElementById('status')!;
  if (!secret) return askForToken();
  let monitor;
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

  let selected: string | undefined;
  const events: string[] = [];
  let scheduled = false;
  const docs = await monitor.subscribeAll();

  const draw = () => {
    scheduled = false;
    const workflows = [...docs.entries()].filter(([key, m]) => key !== '@agents' && m.state).map(([, m]) => m.state as Workflow);
    workflows.sort((a, b) => b.updatedAt - a.updatedAt);
    if (!selected || !docs.has(selected)) selected = workflows[0]?.id;
    const agents = Object.values((docs.get('@agents')?.state as Record<string, Agent> | undefined) ?? {});
    renderWorkflows(document.querySelector('#workflows tbody')!, workflows, selected, (id) => {
      selected = id;
      draw();
    });
    renderAgents(document.querySelector('#agents tbody')!, agents);
    const current = workflows.find((w) => w.id === selected);
    document.getElementById('orders-title')!.innerHTML = current ? `Work orders · <span class="id">${esc(current.id)}</span>` : 'Work orders';
    renderOrders(document.querySelector('#orders tbody')!, current);
    document.getElementById('counts')!.textContent = `${workflows.length} workflows · ${agents.length} agents`;
    document.getElementById('events')!.innerHTML = events.map((e) => `<li>${e}</li>`).join('');
  };
  const redraw = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(draw);
  };
  monitor.on('change', (change: MirrorChange) => {
    for (const line of describeChange(change)) {
      events.unshift(line);
      if (events.length > 60) events.pop();
    }
    redraw();
  });
  draw();
}

void main();
