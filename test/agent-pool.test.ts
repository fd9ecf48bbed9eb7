import type { Socket } from 'socket.io-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { HubState } from '../server/domain/machinery/state.ts';
import type { RunningHub } from '../server/index.ts';
import { REPORT_FORMATS } from '../server/reports/report.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { connectRaw } from './helpers/raw-socket.ts';
import { untilWorkflow } from './helpers/wait.ts';

/** Grace and forgetting short enough to wait for. */
const SHORT = { graceMs: 50, forgetAgentsAfterMs: 100, sweepIntervalMs: 20 };

/** The scheduler's index, which a running hub keeps to itself: what a forgotten agent must leave. */
const workIndexOf = (hub: RunningHub) => (hub.state as unknown as HubState).work;

/** Registers each id over its own bare connection (a hundred at a time); resolves with the sockets. */
async function registerEach(url: string, agentIds: string[]): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let start = 0; start < agentIds.length; start += 100) {
    const batch = await Promise.all(
      agentIds.slice(start, start + 100).map(async (agentId) => {
        const socket = await connectRaw(url, 'agent');
        const reply = await socket.emitWithAck('agent.register', { agentId, agentType: 'ephemeral' });
        expect(reply.ok).toBe(true);
        return socket;
      }),
    );
    sockets.push(...batch);
  }
  return sockets;
}

describe('the agent pool over a long run', () => {
  it('forgets 1,000 agents of one fleet token once they have been offline forgetAgentsAfterMs, and every runtime entry of theirs', async () => {
    const hub = await startHub(SHORT);
    const ids = Array.from({ length: 1000 }, (_, i) => `ephemeral-${i}`);
    const sockets = await registerEach(hub.url, ids);
    const pool = await (await monitor(hub)).subscribe('@agents');
    await pool.until((agents) => Object.keys(agents).length === 1000, { what: '1,000 agents in the pool' });
    for (const socket of sockets) socket.disconnect();
    await pool.until((agents) => Object.keys(agents).length === 0, { what: 'the pool emptied' });
    expect((await (await control(hub)).listAgents()).length).toBe(0);
    const work = workIndexOf(hub);
    expect({
      connected: work.connected.size,
      disconnected: work.disconnected.size,
      available: work.availableAgents().size,
      byAgent: work.byAgent.size,
      offline: work.offline.size,
    }).toEqual({ connected: 0, disconnected: 0, available: 0, byAgent: 0, offline: 0 });
  });

  it('keeps the time an agent went offline across a restart, and forgets it that long after it, not after the restart', async () => {
    const dataDir = tempDir();
    let now = 1_767_261_600_000;
    const clock = () => now;
    // No grace: the agent is offline at the first sweep after its disconnect, whenever that reaches the hub.
    const options = { dataDir, graceMs: 0, forgetAgentsAfterMs: 60_000, sweepIntervalMs: 10 };
    const first = await startHub(options, { clock });
    const socket = await connectRaw(first.url, 'agent');
    expect((await socket.emitWithAck('agent.register', { agentId: 'restarted', agentType: 'w' })).ok).toBe(true);
    const before = await (await monitor(first)).subscribe('@agents');
    socket.disconnect();
    const offline = await before.until((agents) => agents.restarted?.status === 'offline', { what: 'the agent offline' });
    const since = offline.restarted!.offlineSince!;
    expect(since).toBe(now);
    await first.close();

    now += 30_000;
    const second = await startHub(options, { clock });
    expect((await (await control(second)).getAgent('restarted')).offlineSince).toBe(since);
    const after = await (await monitor(second)).subscribe('@agents');
    // Due by the time it went offline; counted from the restart it would be 30 s later.
    now = since + 60_000;
    await after.until((agents) => !Object.hasOwn(agents, 'restarted'), { what: 'the agent forgotten', timeoutMs: 10_000 });
  });

  it('reports a workflow byte for byte the same, agent stats included, after its agents have left the pool', async () => {
    const hub = await startHub(SHORT);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'short-lived agents' });
    await wf.start();
    const kinds = [
      ['loader-1', 'loading', 'csv'],
      ['cleaner-1', 'cleaning', 'dedupe'],
      ['analyst-1', 'analysis', 'stats'],
    ] as const;
    const workers = [];
    for (const [agentId, agentType, capability] of kinds) {
      const worker = await agent(hub, { agentId, agentType, capabilities: [capability, 'shared'] });
      await worker.onTask('t', () => ({ result: agentId }));
      workers.push(worker);
    }
    await wf.createWorkOrders(kinds.flatMap(([, , capability]) => [1, 2].map((n) => ({ id: `${capability}-${n}`, taskType: 't', requirements: [capability] }))));
    await untilWorkflow(hub, wf.id, (w) => w.workOrderCounts.completed === 6, 'six orders completed');
    await wf.complete();
    const before = await Promise.all(REPORT_FORMATS.map((format) => wf.report(format)));
    expect(JSON.parse(before[REPORT_FORMATS.indexOf('json')]!.body).statistics.agents.map((a: { agentId: string; agentType: string; capabilities: string[]; completed: number }) => [a.agentId, a.agentType, a.capabilities, a.completed])).toEqual([
      ['analyst-1', 'analysis', ['shared', 'stats'], 2],
      ['cleaner-1', 'cleaning', ['dedupe', 'shared'], 2],
      ['loader-1', 'loading', ['csv', 'shared'], 2],
    ]);

    const pool = await (await monitor(hub)).subscribe('@agents');
    for (const worker of workers) await worker.close();
    await pool.until((agents) => Object.keys(agents).length === 0, { what: 'the pool emptied' });
    const after = await Promise.all(REPORT_FORMATS.map((format) => wf.report(format)));
    expect(after.map((report) => report.body)).toEqual(before.map((report) => report.body));
  });

  it('lists the pool a page at a time in id order, from the SDK and over HTTP, each agent once', async () => {
    const hub = await startHub();
    const ids = Array.from({ length: 250 }, (_, i) => `agent-${String((i * 37) % 250).padStart(3, '0')}`);
    const sockets = await registerEach(hub.url, ids);
    onTestFinished(() => sockets.forEach((socket) => socket.disconnect()));
    const client = await control(hub);
    const sorted = [...ids].sort();
    const first = await client.listAgentsPage({ limit: 100 });
    expect([first.items.length, first.nextCursor]).toEqual([100, sorted[99]]);
    const seen: string[] = [];
    for await (const agent of client.agents({ limit: 60 })) seen.push(agent.id);
    expect(seen).toEqual(sorted);
    expect((await client.listAgents()).map((agent) => agent.id)).toEqual(sorted);

    const get = async (query: string) => {
      const res = await fetch(`${hub.url}/api/agents?${query}`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
      return { status: res.status, body: await res.json() };
    };
    const page = await get(`limit=2&cursor=${sorted[247]}`);
    expect([page.status, page.body.items.map((agent: { id: string }) => agent.id), page.body.nextCursor]).toEqual([200, sorted.slice(248), null]);
    for (const query of ['limit=0', 'limit=abc', 'cursor=%20bad%20cursor']) expect([query, (await get(query)).body.error?.code]).toEqual([query, 'VALIDATION']);
    await expect(client.listAgentsPage({ cursor: '../bad' })).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});
