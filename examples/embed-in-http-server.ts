// Embedding the hub in an existing HTTP application: a plain node:http server (the Flask app of the
// Python package's "With Flask Applications") serves /workflow/status from a hub running in the
// same process and on the same port, and its own POST /workflow/progress feeds the hub (the
// "on_task_complete" integration). Agents, monitors and the dashboard reach the hub there too.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectControl, HubError, type StageProgress, type WorkflowSummary } from 'switchboard/client';
import { createHub } from 'switchboard/server';
import { z } from 'zod';
import { useHub } from './support/hub.ts';

// The application's server, created first; the hub attaches to it (SWITCHBOARD_URL uses a hub elsewhere instead).
const app = createServer((req, res) => void route(req, res));
const given = process.env.SWITCHBOARD_URL ? await useHub() : undefined;
const dataDir = mkdtempSync(join(tmpdir(), 'switchboard-embedded-'));
const adminToken = `sb_admin_${randomBytes(18).toString('base64url')}`;
const hub = given ? undefined : await createHub({ dataDir, logLevel: 'warn', tokens: [{ token: adminToken, role: 'admin', name: 'http-app' }] }, { server: app });
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
console.log(`application listening on ${appUrl}${hub ? `, with the hub embedded at ${hub.url}` : ''}`);
const control = await connectControl({ url: given?.url ?? appUrl, token: given?.tokens.admin ?? adminToken });
const wf = await control.createWorkflow({ userQuery: 'API workflow' });
await wf.start();
console.log(`hub ${hub ? 'embedded' : `given at ${given!.url}`}; workflow ${wf.id} started`);

/** The body of POST /workflow/progress; the range of `percentage` is the hub's to check. */
const ProgressBody = z.object({ stage: z.string(), percentage: z.number() });

async function body(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return JSON.parse(text || '{}');
}

function send(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

// The application's own routes; everything else goes to the hub (its API, /metrics, the dashboard).
// Errors from the hub keep their code.
async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (req.method === 'GET' && req.url === '/workflow/status') return send(res, 200, await wf.summary());
    if (req.method === 'POST' && req.url === '/workflow/progress') {
      const { stage, percentage } = ProgressBody.parse(await body(req));
      return send(res, 200, await wf.updateProgress(stage, percentage));
    }
    if (hub) return hub.handle(req, res);
    send(res, 404, { error: 'no such route' });
  } catch (error) {
    send(res, error instanceof HubError && error.code === 'VALIDATION' ? 400 : 500, { error: String(error) });
  }
}

try {
  for (const [stage, percentage] of [['data_loading', 100], ['analysis', 40]] as const) {
    const response = await fetch(`${appUrl}/workflow/progress`, { method: 'POST', body: JSON.stringify({ stage, percentage }) });
    const stageProgress = (await response.json()) as StageProgress;
    console.log(`POST /workflow/progress ${stage}=${percentage} → ${response.status}: ${stageProgress.name} at ${stageProgress.progress}%`);
  }
  const bad = await fetch(`${appUrl}/workflow/progress`, { method: 'POST', body: JSON.stringify({ stage: 'analysis', percentage: 140 }) });
  console.log(`POST /workflow/progress analysis=140 → ${bad.status} (the hub refused it with VALIDATION)`);
  const response = await fetch(`${appUrl}/workflow/status`);
  const summary = (await response.json()) as WorkflowSummary;
  console.log(`GET /workflow/status → ${response.status}: ${summary.status}, progress ${summary.progress}% ` +
    `(${summary.stages.map((s) => `${s.name} ${s.progress}%`).join(', ')})`);
  if (hub) {
    const health = await fetch(`${appUrl}/healthz`);
    console.log(`GET /healthz on the same port → ${health.status} (served by the embedded hub)`);
  }
} finally {
  await control.close();
  await hub?.close();
  app.close();
  app.closeAllConnections();
  await given?.close();
  rmSync(dataDir, { recursive: true, force: true });
}
console.log('embedded hub closed with the application');
