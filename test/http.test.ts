import { describe, expect, it } from 'vitest';
import { AgentStatus } from '../shared/schemas/agent.ts';
import { WorkflowStatus } from '../shared/schemas/workflow.ts';
import { agent, control, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { untilTrue } from './helpers/wait.ts';
import { errorRecorder, rawGet, rawRequest } from './helpers/http.ts';

describe('HTTP API', () => {
  it('answers /healthz without a token', async () => {
    const hub = await startHub();
    const res = await fetch(`${hub.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true });
  });

  it('serves a workflow summary as JSON to a bearer token', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'http' });
    await wf.start();
    await wf.updateProgress('loading', 60);
    const res = await fetch(`${hub.url}/api/workflows/${wf.id}/summary`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: wf.id, status: 'in_progress', progress: 60, version: wf.version });
    const list = await fetch(`${hub.url}/api/workflows`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect((await list.json()).items.map((w: { id: string }) => w.id)).toEqual([wf.id]);
  });

  it('takes the Bearer scheme in any case, as HTTP authentication schemes are', async () => {
    const hub = await startHub();
    for (const scheme of ['bearer', 'BEARER']) {
      const res = await fetch(`${hub.url}/api/workflows`, { headers: { authorization: `${scheme} ${TOKENS.monitor}` } });
      expect([scheme, res.status]).toEqual([scheme, 200]);
    }
  });

  it('refuses a missing or wrong token and reports unknown workflows as 404', async () => {
    const hub = await startHub();
    const missing = await fetch(`${hub.url}/api/workflows/x/summary`);
    expect(missing.status).toBe(401);
    expect((await missing.json()).error.code).toBe('UNAUTHENTICATED');
    const agent = await fetch(`${hub.url}/api/workflows/x/summary`, { headers: { authorization: `Bearer ${TOKENS.agent}` } });
    expect(agent.status).toBe(403);
    const unknown = await fetch(`${hub.url}/api/workflows/nope/summary`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.code).toBe('NOT_FOUND');
  });

  it('answers malformed percent-encoding, non-id workflows and bad query values with 400 VALIDATION, and logs no error', async () => {
    const { logger, errors } = errorRecorder();
    const hub = await startHub({}, { logger });
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'real', userQuery: 'http' });
    const targets = [
      '/api/workflows/%E0%A4%A/summary',
      '/api/workflows/%/report.md',
      '/api/workflows/%ZZ/data',
      '/api/workflows/..%2F..%2Fetc/summary',
      '/api/workflows/constructor/summary',
      '/api/workflows/%00/report.json',
      '/api/workflows?limit=abc',
      '/api/workflows?status=%E0%A4%A',
      `/api/workflows/${wf.id}/data?limit=1e999`,
      `/api/workflows/${wf.id}/data?createdAfter=%E0%A4%A`,
    ];
    for (const target of targets) {
      const reply = await rawGet(hub.url, target, TOKENS.admin);
      expect([target, reply.status, JSON.parse(reply.body).error.code]).toEqual([target, 400, 'VALIDATION']);
    }
    expect(errors).toEqual([]);
    expect((await rawGet(hub.url, `/api/workflows/${wf.id}/summary`, TOKENS.admin)).status).toBe(200);
  });

  it('answers a bad list query with a readable VALIDATION message and its issues, as the socket does', async () => {
    const hub = await startHub();
    for (const target of ['/api/workflows?limit=abc', '/api/workflows?status=bogus', '/api/agents?limit=0']) {
      const { error } = JSON.parse((await rawGet(hub.url, target, TOKENS.admin)).body);
      const field = target.includes('status') ? 'status' : 'limit';
      expect([target, error.code, error.message.startsWith('invalid ') && error.message.includes(`${field}: `)]).toEqual([target, 'VALIDATION', true]);
      expect(error.issues.map((issue: { path: string[] }) => issue.path)).toEqual([[field]]);
    }
  });

  it('answers a request target no URL parser accepts with 400 instead of crashing', async () => {
    const hub = await startHub();
    for (const target of ['//[', '//[/api/workflows', 'http://x:99999/healthz']) {
      const reply = await rawGet(hub.url, target, TOKENS.admin);
      expect([target, reply.status, JSON.parse(reply.body).error.code]).toEqual([target, 400, 'VALIDATION']);
    }
    expect((await fetch(`${hub.url}/healthz`)).status).toBe(200);
  });

  it('answers a target that only normalises to socket.io’s path instead of leaving it hanging', async () => {
    const hub = await startHub();
    // socket.io compares the raw target; these are not its requests, so the router must answer.
    for (const target of ['/../socket.io/x', '/%2e%2e/socket.io/', '/./socket.io/?EIO=4&transport=polling']) {
      expect([target, (await rawGet(hub.url, target, TOKENS.admin)).status]).toEqual([target, 404]);
    }
  });

  it('serves no file but the dashboard\'s page and script: a path climbing out, plain or percent-encoded, finds no route', async () => {
    const hub = await startHub();
    const targets = ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/dashboard.js/../../package.json', '/page.html', '/app.ts', '/dashboard/app.ts', '/%2e%2e%2f%2e%2e%2ftokens.json'];
    for (const target of targets) expect([target, (await rawGet(hub.url, target, TOKENS.admin)).status]).toEqual([target, 404]);
    // Percent-encoded in a workflow id, it is no id.
    expect((await rawGet(hub.url, '/api/workflows/..%2f..%2ftokens.json/summary', TOKENS.admin)).status).toBe(400);
  });

  it('answers HEAD as GET without a body: a HEAD health check of /healthz or the dashboard is not told 404', async () => {
    const hub = await startHub();
    const client = await control(hub);
    await client.createWorkflow({ id: 'wf-1', userQuery: 'head' });
    // RFC 9110 §9.1: all general-purpose servers MUST support GET and HEAD.
    for (const [target, token] of [['/healthz', undefined], ['/', undefined], ['/api/workflows/wf-1/report.md', TOKENS.monitor]] as const) {
      const get = await rawGet(hub.url, target, token);
      const head = await rawRequest(hub.url, 'HEAD', target, token);
      expect([target, head.status, head.body]).toEqual([target, get.status, '']);
    }
  });

  it('refuses a query value that is neither decimal milliseconds nor an ISO date (hex, binary, free text) instead of reading it as some other time or number', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'wf-1', userQuery: 'filters' });
    await wf.addDataReference({ id: 'ref', path: 'https://example.com/a.csv' });
    // PROTOCOL.md (HTTP): "a bad query value ... [is] VALIDATION (400)"; times are "in ms or ISO 8601".
    // V8's Date.parse falls back to a legacy parser: "foo 1" is 2001-01-01, "tomorrow 3" is 2001-03-01.
    for (const target of ['/api/workflows/wf-1/data?createdAfter=foo%201', '/api/workflows/wf-1/data?createdBefore=tomorrow%203', `/api/workflows/wf-1/data?createdAfter=0x10`, `/api/workflows/wf-1/data?createdBefore=0b1`, `/api/workflows/wf-1/data?limit=0x10`, '/api/workflows?limit=0x10', '/api/agents?limit=0o7', '/api/workflows/wf-1/data?createdAfter=2024-02-31', '/api/workflows/wf-1/data?createdBefore=2023-02-29T12:00:00Z', '/api/workflows/wf-1/data?createdAfter=2024-01-01T24:00Z']) {
      const reply = await rawGet(hub.url, target, TOKENS.monitor);
      expect([target, reply.status]).toEqual([target, 400]);
    }
    // A day that exists, in a leap year, and a time with its zone.
    for (const target of ['/api/workflows/wf-1/data?createdAfter=2024-02-29', '/api/workflows/wf-1/data?createdBefore=2024-02-29T23:59:59.5%2B01:00']) {
      expect([target, (await rawGet(hub.url, target, TOKENS.monitor)).status]).toEqual([target, 200]);
    }
  });

  it('takes a bearer token after more than one space, as RFC 9110 credentials (auth-scheme 1*SP token68) allow', async () => {
    const hub = await startHub();
    const reply = await rawGet(hub.url, '/api/workflows', undefined, { authorization: `Bearer  ${TOKENS.monitor}` });
    expect(reply.status).toBe(200);
  });

  it('lists workflows newest first with order=desc, a page at a time, and refuses a parameter it does not know', async () => {
    const hub = await startHub();
    const client = await control(hub);
    for (const id of ['wf-a', 'wf-b', 'wf-c']) await client.createWorkflow({ id, userQuery: id });
    const first = JSON.parse((await rawGet(hub.url, '/api/workflows?order=desc&limit=2', TOKENS.monitor)).body);
    expect([first.items.map((w: { id: string }) => w.id), first.nextCursor]).toEqual([['wf-c', 'wf-b'], 'wf-b']);
    const second = JSON.parse((await rawGet(hub.url, `/api/workflows?order=desc&limit=2&cursor=${first.nextCursor}`, TOKENS.monitor)).body);
    expect([second.items.map((w: { id: string }) => w.id), second.nextCursor]).toEqual([['wf-a'], null]);
    // PROTOCOL.md (HTTP): "a parameter a route does not know or one given twice" is VALIDATION, on the routes that take none too.
    const refused = ['/api/workflows?sort=id', '/api/workflows?limit=2&limit=3', '/api/agents?status=active', '/api/workflows/wf-a/summary?version=1', '/api/workflows/wf-a/report.json?version=1'];
    for (const target of refused) {
      const reply = await rawGet(hub.url, target, TOKENS.monitor);
      expect([target, reply.status, JSON.parse(reply.body).error.code]).toEqual([target, 400, 'VALIDATION']);
    }
    expect((await rawGet(hub.url, `/api/workflows/wf-a/summary?token=${TOKENS.monitor}`)).status).toBe(200);
  });
});

describe('metrics', () => {
  it('serves Prometheus text with connections, work orders by state, latencies and memory', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'metrics' });
    await wf.start();
    await wf.createWorkOrders([{ taskType: 'nobody-serves-this' }, { taskType: 'nobody-serves-this' }]);
    expect((await fetch(`${hub.url}/metrics`)).status).toBe(401);
    const res = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (line: string) => Number(text.split('\n').find((l) => l.startsWith(line + ' '))?.split(' ')[1]);
    expect(value('switchboard_connections{namespace="control"}')).toBe(1);
    expect(value('switchboard_work_orders{state="queued"}')).toBe(2);
    expect(value('switchboard_workflows{status="in_progress"}')).toBe(1);
    expect(value('switchboard_journal_records_total')).toBeGreaterThanOrEqual(3);
    expect(value('switchboard_journal_write_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(text).toContain('switchboard_assignment_latency_seconds_bucket{le="+Inf"}');
    expect(value('nodejs_heap_used_bytes')).toBeGreaterThan(0);
    expect(text).toMatch(/nodejs_eventloop_delay_seconds\{quantile="0.99"\} \d/);
  });

  it('counts workflows and agents in every status, 0 when none is in it: a series does not vanish when its last workflow leaves it', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'metrics' });
    await wf.start();
    await wf.cancel('done with it');
    const text = await (await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).text();
    const samples = (name: string) => text.split('\n').filter((line) => line.startsWith(`${name}{`));
    expect(samples('switchboard_workflows')).toEqual(WorkflowStatus.options.map((status) => `switchboard_workflows{status="${status}"} ${status === 'cancelled' ? 1 : 0}`));
    expect(samples('switchboard_agents')).toEqual([...AgentStatus.options, 'disconnected', 'closing'].map((status) => `switchboard_agents{status="${status}"} 0`));
  });

  it('counts an agent that left, or has not come back since a restart, as disconnected until its grace period ends, not as idle', async () => {
    const dataDir = tempDir();
    const agentsBy = async (url: string) => {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).text();
      return text.split('\n').filter((line) => line.startsWith('switchboard_agents{') && !line.endsWith(' 0'));
    };
    const hub = await startHub({ dataDir, graceMs: 600_000 });
    const worker = await agent(hub, { agentId: 'leaves', agentType: 'worker' });
    expect(await agentsBy(hub.url)).toEqual(['switchboard_agents{status="idle"} 1']);
    await worker.close();
    await untilTrue(() => typeof hub.state.agents?.['leaves']?.disconnectedSince === 'number', 'the disconnect is recorded');
    expect(await agentsBy(hub.url)).toEqual(['switchboard_agents{status="disconnected"} 1']);
    await hub.close();
    const again = await startHub({ dataDir, graceMs: 600_000 });
    expect(await agentsBy(again.url)).toEqual(['switchboard_agents{status="disconnected"} 1']);
  });

  it('counts a workflow and its orders the same once it is archived, and after a restart', async () => {
    const dataDir = tempDir();
    const counts = async (url: string) => {
      const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).text();
      return text.split('\n').filter((line) => /^switchboard_(workflows|work_orders)\{/.test(line) && !line.endsWith(' 0'));
    };
    const hub = await startHub({ dataDir, keepFinishedMs: 0, sweepIntervalMs: 20 });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'metrics of the archive' });
    await wf.start();
    await wf.createWorkOrders([{ taskType: 'nobody-serves-this' }, { taskType: 'nobody-serves-this' }]);
    await wf.cancel('done with it');
    const expected = ['switchboard_work_orders{state="cancelled"} 2', 'switchboard_workflows{status="cancelled"} 1'];
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow left memory');
    expect(await counts(hub.url)).toEqual(expected);
    await hub.close();
    const again = await startHub({ dataDir });
    // The archive's index is read once the hub serves: a list waits for it.
    await (await control(again)).listWorkflows();
    expect(await counts(again.url)).toEqual(expected);
  });
});
