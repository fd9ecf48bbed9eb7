import { describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { connectAgent, HubError, NonRetryableError } from '../client-sdk/index.ts';
import { codeOf } from './helpers/errors.ts';
import { hubWithHeldWrites } from './helpers/held-writes.ts';
import { agent, control, monitor, startHub, tempDir, TOKENS } from './helpers/hub.ts';
import { deferred, untilOrder, untilTrue, untilWorkflow } from './helpers/wait.ts';

/** Hub settings that make leases and grace periods short enough to test without long waits. */
const FAST = { sweepIntervalMs: 20, graceMs: 300, backoffBaseMs: 50, backoffMaxMs: 200 };

describe('agents and work orders over the network', () => {
  it('matches work to capabilities and prefers agents with the preferred ones', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'matching' });
    await wf.start();
    const ran: Record<string, string[]> = { csv: [], gpu: [], plain: [] };
    const done = deferred();
    let finished = 0;
    for (const [name, capabilities] of [['csv', ['csv_processing']], ['gpu', ['csv_processing', 'gpu']], ['plain', []]] as const) {
      const a = await agent(hub, { agentId: name, agentType: 'data_processing', capabilities: [...capabilities], maxConcurrentTasks: 5 });
      await a.onTask('*', (task) => {
        ran[name]!.push(task.workOrderId);
        if (++finished === 3) done.resolve();
        return { result: name };
      });
    }
    // One batch, so every order is placed before any agent finishes (a finished agent scores higher).
    await wf.createWorkOrders([
      { id: 'needs-csv', taskType: 'data_processing', requirements: ['csv_processing'], preferences: { gpu: 1 } },
      { id: 'needs-gpu', taskType: 'data_processing', requirements: ['gpu'] },
      { id: 'anyone', taskType: 'data_processing', preferences: { nothing_has_this: 1 } },
    ]);
    await done.promise;
    expect(ran.gpu).toContain('needs-csv');
    expect(ran.gpu).toContain('needs-gpu');
    // Nobody has the preference: the tie goes to an agent never assigned before, not the busy one.
    expect(ran.gpu).not.toContain('anyone');
    expect([...ran.csv!, ...ran.plain!]).toEqual(['anyone']);
    expect((await wf.getWorkOrder('needs-gpu')).result).toBe('gpu');
  });

  it('keeps an agent draining through a new registration under its id, until it resumes', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'drain across a redeploy' });
    await wf.start();
    const old = await agent(hub, { agentId: 'w1', agentType: 'w' });
    await old.onTask('t', () => ({ result: 'old' }));
    await old.drain();
    await old.close();
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const warnings: string[] = [];
    const fresh = await agent(hub, { agentId: 'w1', agentType: 'w', logger: { error: () => {}, warn: (message) => warnings.push(message) } });
    await fresh.onTask('t', () => ({ result: 'fresh' }));
    expect((await client.listAgents()).find((a) => a.id === 'w1')!.status).toBe('draining');
    expect((await wf.getWorkOrder('job')).waiting).toEqual({ reason: 'no_capable_agent', taskType: 't' });
    // The new process learns it from its registration's reply, and says so once.
    expect(fresh.draining).toBe(true);
    expect(warnings).toEqual([expect.stringContaining('agent w1 is draining on the hub')]);
    await fresh.resume();
    expect(fresh.draining).toBe(false);
    await untilOrder(hub, wf.id, 'job', 'completed');
    expect((await wf.getWorkOrder('job')).result).toBe('fresh');
  });

  it('keeps an agent draining through an offline spell, and takes a control client\'s drain or activate of an offline agent for its return', async () => {
    const hub = await startHub(FAST);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'drain across a slow redeploy' });
    await wf.start();
    const quiet = { error: () => {}, warn: () => {} };
    const pool = await (await monitor(hub)).subscribe('@agents');
    const offline = (agentId: string) => pool.until((agents) => agents?.[agentId]?.status === 'offline', { what: `${agentId} offline` });
    // Drained by itself, gone past the grace period: the new process starts drained.
    const old = await agent(hub, { agentId: 'w1', agentType: 'w', logger: quiet });
    await old.drain();
    await old.close();
    await offline('w1');
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const fresh = await agent(hub, { agentId: 'w1', agentType: 'w', logger: quiet });
    await fresh.onTask('t', () => ({ result: 'fresh' }));
    expect(fresh.draining).toBe(true);
    expect((await client.getAgent('w1')).status).toBe('draining');
    expect((await wf.getWorkOrder('job')).state).toBe('queued');
    // Drained by a control client while offline (the reply still says offline), then back.
    const other = await agent(hub, { agentId: 'w2', agentType: 'w', logger: quiet });
    await other.close();
    await offline('w2');
    expect((await client.updateAgentStatus('w2', { status: 'draining' })).status).toBe('offline');
    const back = await agent(hub, { agentId: 'w2', agentType: 'w', logger: quiet });
    await back.onTask('t', () => ({ result: 'w2' }));
    expect(back.draining).toBe(true);
    // Reactivated while offline: it comes back taking work.
    await fresh.close();
    await offline('w1');
    await client.updateAgentStatus('w1', { status: 'active' });
    const again = await agent(hub, { agentId: 'w1', agentType: 'w', logger: quiet });
    await again.onTask('t', () => ({ result: 'again' }));
    expect(again.draining).toBe(false);
    await untilOrder(hub, wf.id, 'job', 'completed');
    expect((await wf.getWorkOrder('job')).result).toBe('again');
    expect((await client.getAgent('w1')).drainingOnReturn).toBeUndefined();
  });

  it('takes new work after a reconnect when a control client reactivated it, though it drained itself', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'reactivated while away' });
    await wf.start();
    const a = await agent(hub, { agentId: 'w2', agentType: 'w', logger: null });
    await a.onTask('t', () => ({ result: 'back' }));
    await a.drain();
    expect(a.draining).toBe(true);
    const adopted = new Promise<boolean>((resolve) => a.on('draining', resolve));
    // Away, so the change is not pushed to it.
    a.connection.socket.disconnect();
    await client.updateAgentStatus('w2', { status: 'active' });
    a.connection.socket.connect();
    // The registration after the reconnect carries the hub's word, which wins over the local drain().
    expect(await adopted).toBe(false);
    expect(a.draining).toBe(false);
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(order.result).toBe('back');
    expect(order.declinedBy).toEqual([]);
  });

  it('takes the work queued while it was away and reactivated by a control client, declining none of it', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'reactivated while away, work waiting' });
    await wf.start();
    const a = await agent(hub, { agentId: 'w5', agentType: 'w', logger: null });
    await a.onTask('t', () => ({ result: 'back' }));
    await a.drain();
    a.connection.socket.disconnect();
    await client.updateAgentStatus('w5', { status: 'active' });
    // Offered at its registration, maybe before the reply that tells it it is active again.
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    a.connection.socket.connect();
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect({ result: order.result, declinedBy: order.declinedBy }).toEqual({ result: 'back', declinedBy: [] });
  });

  it("drains and reactivates a connected agent at a control client's word, told at once", async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'drained by an operator' });
    await wf.start();
    const a = await agent(hub, { agentId: 'w3', agentType: 'w', logger: null });
    await a.onTask('t', () => ({ result: 'done' }));
    const told: boolean[] = [];
    const next = () =>
      new Promise<boolean>((resolve) => {
        const off = a.on('draining', (draining) => (off(), resolve(draining)));
      });
    a.on('draining', (draining) => told.push(draining));
    let change = next();
    await client.updateAgentStatus('w3', { status: 'draining' });
    expect(await change).toBe(true);
    expect(a.draining).toBe(true);
    // A note changes nothing about draining: nothing is pushed.
    await client.updateAgentStatus('w3', { note: 'maintenance' });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    expect((await wf.getWorkOrder('job')).waiting).toEqual({ reason: 'no_capable_agent', taskType: 't' });
    change = next();
    await client.updateAgentStatus('w3', { status: 'active' });
    expect(await change).toBe(false);
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(order.declinedBy).toEqual([]);
    expect(told).toEqual([true, false]);
  });

  // One commit carries the agent's own change and a control client's after it: the push of the
  // later one reaches the agent before the reply to its own, which was made before it.
  for (const [own, operator] of [
    ['drain', 'active'],
    ['resume', 'draining'],
  ] as const) {
    it(`ends as the hub says when its own ${own}() and a control client's ${operator} commit together, the control client's last`, async () => {
      const { hub, store } = await hubWithHeldWrites();
      const client = await control(hub);
      const a = await agent(hub, { agentId: 'w', agentType: 'w', logger: null });
      if (own === 'resume') await a.drain();
      const isDraining = () => hub.state.agents!.w!.status === 'draining';
      // A write held, so that the two changes after it share the next one.
      store.hold();
      const held = client.updateAgentStatus('w', { note: 'held' });
      await store.holding.promise;
      const asked = a[own]();
      await untilTrue(() => isDraining() === (own === 'drain'), `its own ${own}() applied`);
      const told = client.updateAgentStatus('w', { status: operator });
      await untilTrue(() => isDraining() === (operator === 'draining'), 'the control client’s change applied');
      store.release();
      await Promise.all([held, asked, told]);
      expect(a.draining).toBe(operator === 'draining');
    });
  }

  it('keeps taking work when the hub refused its drain() (RATE_LIMITED): it did not decline offers as draining', async () => {
    // Three requests a connection: the control client's create, start and order; the agent's registration, onTask's and a note.
    const hub = await startHub({ rateLimit: { perSecond: 0.001, burst: 3 } });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'refused drain' });
    await wf.start();
    const a = await agent(hub, { agentId: 'w', agentType: 'w', logger: null });
    const ran = deferred();
    await a.onTask('t', () => {
      ran.resolve();
      return { result: 'ran' };
    });
    await a.setNote('about to drain');
    expect(await codeOf(a.drain())).toBe('RATE_LIMITED');
    expect(a.draining).toBe(false);
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    await ran.promise;
    expect(hub.state.workflows.get(wf.id)!.workOrders.job!.declinedBy).toEqual([]);
  });

  it("ends draining when its own drain() follows a control client's activate still being written", async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const a = await agent(hub, { agentId: 'w', agentType: 'w', logger: null });
    await a.drain();
    store.hold();
    const activated = client.updateAgentStatus('w', { status: 'active' });
    await store.holding.promise;
    // The push of the activate reaches the agent while its drain() waits: only the drain's own push, after it, says the last word.
    const drained = a.drain();
    await untilTrue(() => hub.state.agents!.w!.status === 'draining', 'its own drain() applied');
    store.release();
    await Promise.all([activated, drained]);
    expect(a.draining).toBe(true);
  });

  it("ends draining when its registration and a control client's drain commit together, the drain last", async () => {
    const { hub, store } = await hubWithHeldWrites();
    const client = await control(hub);
    const a = await agent(hub, { agentId: 'w', agentType: 'w', logger: null });
    store.hold();
    const held = client.updateAgentStatus('w', { note: 'held' });
    await store.holding.promise;
    const registered = a.onTask('t', () => ({ result: 'never' }));
    await untilTrue(() => hub.state.agents!.w!.taskTypes.includes('t'), 'the registration applied');
    const drained = client.updateAgentStatus('w', { status: 'draining' });
    await untilTrue(() => hub.state.agents!.w!.status === 'draining', 'the drain applied');
    store.release();
    await Promise.all([held, registered, drained]);
    expect(a.draining).toBe(true);
  });

  it('serves higher priority first when agents are scarce', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'priority' });
    await wf.start();
    const order: string[] = [];
    const gate = deferred();
    const all = deferred();
    const a = await agent(hub, { agentId: 'solo', agentType: 'w', maxConcurrentTasks: 1 });
    await a.onTask('t', async (task) => {
      order.push(task.workOrderId);
      if (task.workOrderId === 'blocker') await gate.promise;
      if (order.length === 5) all.resolve();
    });
    await wf.createWorkOrder({ id: 'blocker', taskType: 't' });
    await untilOrder(hub, wf.id, 'blocker', 'running');
    await wf.createWorkOrders([
      { id: 'low', taskType: 't', priority: 'low' },
      { id: 'normal', taskType: 't', priority: 'normal' },
      { id: 'critical', taskType: 't', priority: 'critical' },
      { id: 'high', taskType: 't', priority: 'high' },
    ]);
    gate.resolve();
    await all.promise;
    expect(order).toEqual(['blocker', 'critical', 'high', 'normal', 'low']);
  });

  it('never exceeds an agent’s slots under a burst of 1,000 work orders over 10 agents, and completes each exactly once', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'burst' });
    await wf.start();
    const running = new Map<string, number>();
    const peak = new Map<string, number>();
    const completions = new Map<string, number>();
    const all = deferred();
    for (let i = 0; i < 10; i++) {
      const id = `worker-${i}`;
      const slots = 1 + (i % 4);
      const a = await agent(hub, { agentId: id, agentType: 'w', maxConcurrentTasks: slots });
      await a.onTask('burst', async (task) => {
        running.set(id, (running.get(id) ?? 0) + 1);
        peak.set(id, Math.max(peak.get(id) ?? 0, running.get(id)!));
        expect(running.get(id)).toBeLessThanOrEqual(slots);
        await new Promise((resolve) => setImmediate(resolve));
        running.set(id, running.get(id)! - 1);
        completions.set(task.workOrderId, (completions.get(task.workOrderId) ?? 0) + 1);
        if (completions.size === 1000) all.resolve();
      });
    }
    for (let batch = 0; batch < 4; batch++) {
      await wf.createWorkOrders(Array.from({ length: 250 }, (_, i) => ({ id: `job-${batch * 250 + i}`, taskType: 'burst' })));
    }
    await all.promise;
    const finished = await untilWorkflow(hub, wf.id, (w) => w.workOrderCounts.completed === 1000, 'all completed');
    expect([...completions.values()].every((n) => n === 1)).toBe(true);
    for (let i = 0; i < 10; i++) expect(peak.get(`worker-${i}`) ?? 0).toBeLessThanOrEqual(1 + (i % 4));
    expect(finished.workOrderCounts).toMatchObject({ completed: 1000, queued: 0, offered: 0, running: 0, failed: 0 });
    const agents = await client.listAgents();
    expect(agents.reduce((sum, a) => sum + a.stats.completed, 0)).toBe(1000);
    expect(agents.every((a) => a.load === 0)).toBe(true);
  });

  it('gives the work of an agent whose socket dropped mid-task to another agent, and completes it once', async () => {
    const hub = await startHub(FAST);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'failover' });
    await wf.start();
    const started = deferred();
    const doomed = await agent(hub, { agentId: 'doomed', agentType: 'w' });
    await doomed.onTask('t', async () => {
      started.resolve();
      await new Promise(() => undefined);
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { leaseMs: 5000 } });
    await started.promise;
    // Kill the connection the hard way: no goodbye, no reconnection.
    doomed.connection.socket.io.reconnection(false);
    doomed.connection.socket.io.engine.close();
    const rescuer = await agent(hub, { agentId: 'rescuer', agentType: 'w' });
    let rescued = 0;
    await rescuer.onTask('t', () => {
      rescued++;
      return { result: 'rescued' };
    });
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(rescued).toBe(1);
    expect(order.result).toBe('rescued');
    expect(order.history.map((h) => [h.agentId, h.outcome])).toEqual([
      ['doomed', 'agent_lost'],
      ['rescuer', 'completed'],
    ]);
    expect((await client.getAgent('doomed')).status).toBe('offline');
  });

  it('refuses the late completion of an agent that stalled past its lease with STALE_ATTEMPT; one completion is recorded', async () => {
    const hub = await startHub(FAST);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'stale' });
    await wf.start();
    // A hand-written agent that accepts and then goes silent (no heartbeats), as if paused.
    const socket = io(`${hub.url}/agent`, { auth: { token: TOKENS.agent }, transports: ['websocket'] });
    const offered = deferred<{ workflowId: string; workOrderId: string; attemptToken: string }>();
    socket.on('assignment', (assignment, ack) => {
      ack({ accept: true });
      offered.resolve(assignment);
    });
    const registered = await socket.emitWithAck('agent.register', { agentId: 'sleepy', agentType: 'w', taskTypes: ['t'] });
    expect(registered.ok).toBe(true);
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { leaseMs: 500 } });
    const assignment = await offered.promise;
    const awake = await agent(hub, { agentId: 'awake', agentType: 'w' });
    await awake.onTask('t', () => ({ result: 'fresh' }));
    await untilOrder(hub, wf.id, 'job', 'completed');
    const { workflowId, workOrderId, attemptToken } = assignment;
    const late = await socket.emitWithAck('task.complete', { workflowId, workOrderId, attemptToken, result: 'late' });
    socket.disconnect();
    // The refusal lists how this agent's attempts ended: its own report never landed.
    expect(late).toMatchObject({ ok: false, error: { code: 'STALE_ATTEMPT', attempts: [{ number: 1, outcome: 'lease_expired' }] } });
    const order = await wf.getWorkOrder('job');
    expect(order.result).toBe('fresh');
    expect(order.history.filter((h) => h.outcome === 'completed')).toHaveLength(1);
    expect(order.history[0]).toMatchObject({ agentId: 'sleepy', outcome: 'lease_expired' });
  });

  it('runs a loading → cleaning → analysis DAG in order', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'pipeline' });
    const log: string[] = [];
    const done = deferred();
    for (const stage of ['loading', 'cleaning', 'analysis']) {
      const a = await agent(hub, { agentId: `${stage}-agent`, agentType: stage, capabilities: [stage], maxConcurrentTasks: 3 });
      await a.onTask(stage, async (task) => {
        log.push(`start ${task.workOrderId}`);
        await new Promise((resolve) => setImmediate(resolve));
        log.push(`end ${task.workOrderId}`);
        if (stage === 'analysis') done.resolve();
        return { result: `${stage} done` };
      });
    }
    await wf.createWorkOrders([
      { id: 'analysis', taskType: 'analysis', requirements: ['analysis'], dependencies: ['cleaning'] },
      { id: 'cleaning', taskType: 'cleaning', requirements: ['cleaning'], dependencies: ['loading'] },
      { id: 'loading', taskType: 'loading', requirements: ['loading'] },
    ]);
    expect((await wf.getWorkOrder('loading')).state).toBe('pending');
    await wf.start();
    await done.promise;
    expect(log).toEqual(['start loading', 'end loading', 'start cleaning', 'end cleaning', 'start analysis', 'end analysis']);
  });

  it('delivers a cancellation to the running handler through ctx.signal', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'cancel' });
    await wf.start();
    const started = deferred();
    const aborted = deferred<string>();
    const a = await agent(hub, { agentId: 'worker', agentType: 'w' });
    await a.onTask('long', async (_task, ctx) => {
      started.resolve();
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      aborted.resolve(String((ctx.signal.reason as Error).message));
    });
    await wf.createWorkOrder({ id: 'long', taskType: 'long' });
    await started.promise;
    const cancelled = await wf.cancelWorkOrder('long', 'user changed their mind');
    expect(cancelled.state).toBe('cancelled');
    expect(await aborted.promise).toContain('user changed their mind');
    expect((await client.getAgent('worker')).load).toBe(0);
  });

  it('stops retrying a poison task after maxAttempts and dead-letters it with the reason', async () => {
    const hub = await startHub(FAST);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'poison' });
    await wf.start();
    let attempts = 0;
    const a = await agent(hub, { agentId: 'worker', agentType: 'w' });
    await a.onTask('poison', () => {
      attempts++;
      throw new Error('malformed input');
    });
    await wf.createWorkOrder({ id: 'poison', taskType: 'poison', maxAttempts: 3 });
    const order = await untilOrder(hub, wf.id, 'poison', 'failed');
    expect(attempts).toBe(3);
    expect(order.error).toBe('failed after 3 attempt(s): malformed input');
    expect(order.history.map((h) => h.outcome)).toEqual(['failed', 'failed', 'failed']);

    await a.onTask('fatal', () => {
      throw new NonRetryableError('cannot ever work');
    });
    await wf.createWorkOrder({ id: 'fatal', taskType: 'fatal', maxAttempts: 5 });
    const fatal = await untilOrder(hub, wf.id, 'fatal', 'failed');
    expect(fatal.attempts).toBe(1);
  });

  it('streams progress, keeps per-agent performance, and answers agent errors with codes', async () => {
    const hub = await startHub();
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'progress' });
    await wf.start();
    const a = await agent(hub, { agentId: 'worker', agentType: 'w', progressIntervalMs: 20 });
    const done = deferred();
    await a.onTask('t', async (_task, ctx) => {
      for (let i = 1; i <= 200; i++) void ctx.progress(i / 2, `row ${i}`).catch(() => undefined);
      await ctx.progress(100, 'all rows', { rows: 200 });
      done.resolve();
      return { result: { rows: 200 } };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    await done.promise;
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(order).toMatchObject({ progress: 100, message: 'all rows', checkpoint: { rows: 200 } });
    // 201 progress calls were coalesced into a handful of updates: few versions, not hundreds.
    const versions = (await wf.summary()).version;
    expect(versions).toBeLessThan(40);
    const perf = await client.getAgent('worker');
    expect(perf.stats).toMatchObject({ assigned: 1, completed: 1, failed: 0 });
    expect(perf.stats.byTaskType.t).toMatchObject({ completed: 1 });
    expect((await wf.get()).agents.worker).toMatchObject({ assigned: 1, completed: 1 });

    await expect(a.connection.request('task.complete', { workflowId: wf.id, workOrderId: 'job', attemptToken: 'att_forged' })).rejects.toMatchObject({
      code: 'STALE_ATTEMPT',
    });
    await expect(a.connection.request('task.complete', { workflowId: wf.id, workOrderId: 'nope', attemptToken: 'x' })).rejects.toBeInstanceOf(HubError);
  });

  it('heartbeats often enough for the shortest lease among its running tasks', async () => {
    const hub = await startHub(FAST);
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'leases' });
    await wf.start();
    const a = await agent(hub, { agentId: 'worker', agentType: 'w', maxConcurrentTasks: 2 });
    const longStarted = deferred();
    const releaseLong = deferred();
    await a.onTask('long', async () => {
      longStarted.resolve();
      await releaseLong.promise;
    });
    // The work of the short task outlasts its lease three times over: only heartbeats keep it.
    await a.onTask('short', () => new Promise((resolve) => setTimeout(resolve, 1500)));
    await wf.createWorkOrder({ id: 'long', taskType: 'long', timeouts: { leaseMs: 30_000 } });
    await longStarted.promise;
    await wf.createWorkOrder({ id: 'short', taskType: 'short', timeouts: { leaseMs: 500 } });
    const short = await untilOrder(hub, wf.id, 'short', 'completed');
    expect(short.history.map((h) => h.outcome)).toEqual(['completed']);
    releaseLong.resolve();
  });

  it('keeps an agent’s identity and running work when it reconnects within the grace period', async () => {
    const hub = await startHub({ ...FAST, graceMs: 10_000 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'reconnect' });
    await wf.start();
    const started = deferred();
    const release = deferred();
    const a = await agent(hub, { agentId: 'flaky', agentType: 'w' });
    await a.onTask('t', async () => {
      started.resolve();
      await release.promise;
      return { result: 'survived' };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    await started.promise;
    const reconnected = new Promise<void>((resolve) => a.connection.socket.once('connect', () => resolve()));
    a.connection.socket.io.engine.close();
    await reconnected;
    // Registering again (the SDK does it on every reconnect) shows the hub kept the attempt for us.
    const again = await a.register();
    expect(again.attempts).toEqual([expect.objectContaining({ workOrderId: 'job', state: 'running' })]);
    expect(again.agent.stats.assigned).toBe(1);
    release.resolve();
    const order = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(order.result).toBe('survived');
    expect(order.history).toHaveLength(1);
  });

  it('leaves one connection the agent when two register its id in one commit, the older registering again', async () => {
    const { hub, store } = await hubWithHeldWrites();
    const register = { agentId: 'twin', agentType: 'raw', taskTypes: ['t'], maxConcurrentTasks: 1 };
    const joined = async () => {
      const socket = io(`${hub.url}/agent`, { auth: { token: TOKENS.agent }, transports: ['websocket'], reconnection: false, forceNew: true });
      await new Promise<void>((resolve, reject) => socket.once('connect', () => resolve()).once('connect_error', reject));
      return socket;
    };
    const first = await joined();
    const second = await joined();
    try {
      expect(await first.emitWithAck('agent.register', register)).toMatchObject({ ok: true });
      // The second takes the id; the first registers again (as an SDK adding a handler does) before that is written.
      const version = () => hub.state.versions.get('@agents') ?? 0;
      const before = version();
      store.hold();
      const replies = [second.emitWithAck('agent.register', { ...register, labels: { via: 'second' } })];
      await untilTrue(() => version() > before, 'the second registration applied');
      replies.push(first.emitWithAck('agent.register', { ...register, labels: { via: 'first' } }));
      await untilTrue(() => version() > before + 1, 'the first registration applied again');
      store.release();
      expect(await Promise.all(replies)).toMatchObject([{ ok: true }, { ok: true }]);
      // The later registration holds the agent and closes the other connection; the agent is not away.
      await untilTrue(() => second.disconnected, 'the second connection closed');
      expect(first.connected).toBe(true);
      expect(hub.state.agents!['twin']!.disconnectedSince ?? null).toBeNull();
      expect(await first.emitWithAck('agent.heartbeat', { attemptTokens: [] })).toMatchObject({ ok: true });
    } finally {
      first.disconnect();
      second.disconnect();
    }
  });

  it('lets an agent finish its running task across a hub restart on the same data directory', async () => {
    const dataDir = tempDir();
    const first = await startHub({ ...FAST, dataDir, graceMs: 10_000 });
    const client = await control(first);
    const wf = await client.createWorkflow({ userQuery: 'restart' });
    await wf.start();
    const started = deferred();
    const release = deferred();
    const a = await agent(first, { agentId: 'steady', agentType: 'w' });
    await a.onTask('t', async () => {
      started.resolve();
      await release.promise;
      return { result: 'across restarts' };
    });
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { leaseMs: 10_000 } });
    await started.promise;
    const reconnected = new Promise<void>((resolve) => a.connection.socket.once('connect', () => resolve()));
    await first.close();
    const second = await startHub({ ...FAST, dataDir, graceMs: 10_000, port: first.port });
    await reconnected;
    const again = await a.register();
    expect(again.attempts.map((x) => x.workOrderId)).toEqual(['job']);
    release.resolve();
    const order = await untilOrder(second, wf.id, 'job', 'completed');
    expect(order.result).toBe('across restarts');
    expect(order.history).toHaveLength(1);
  });

  it('refuses an agent token bound to another agentId, and a control token on /agent', async () => {
    const hub = await startHub({
      tokens: [
        { token: TOKENS.admin, role: 'admin' },
        { token: 'bound-agent-token', role: 'agent', agentId: 'alpha' },
      ],
    });
    await expect(connectAgent({ url: hub.url, token: 'bound-agent-token', agentId: 'beta', agentType: 'w' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(connectAgent({ url: hub.url, token: TOKENS.admin, agentId: 'alpha', agentType: 'w' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const alpha = await connectAgent({ url: hub.url, token: 'bound-agent-token', agentId: 'alpha', agentType: 'w' });
    alpha.close();
  });
});
