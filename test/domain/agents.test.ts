import { describe, expect, it } from 'vitest';
import { RegisterAgentInput, type Agent } from '../../shared/schemas/agent.ts';
import { applyCommand } from '../../server/domain/machinery/commands.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { AGENTS_DOC, stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { copyJson, Transaction } from '../../server/domain/machinery/transaction.ts';
import { listAgents, nearestRankP95 } from '../../server/domain/work/agents.ts';
import { CreateWorkOrderInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { random } from '../helpers/random.ts';
import { ADMIN, domain, SETTINGS } from '../helpers/domain.ts';

/** Disconnects an agent and runs the sweep once its grace period is over: it is offline from then. */
function takeOffline(d: ReturnType<typeof domain>, agentId: string): void {
  d.run('agent.disconnect', { agentId });
  d.advance(SETTINGS.graceMs);
  expect(d.run('hub.sweep', {}).reply.offline).toBe(1);
}

describe('agent presence (domain, manual clock)', () => {
  it('marks an idle agent offline once it has been gone graceMs, and back idle when it registers again', () => {
    const d = domain();
    d.register('idle-one');
    d.run('agent.disconnect', { agentId: 'idle-one' });
    d.advance(SETTINGS.graceMs - 1);
    expect(d.run('hub.sweep', {}).reply.offline).toBe(0);
    expect(d.state.agents!['idle-one']!.status).toBe('idle');
    d.advance(1);
    expect(d.run('hub.sweep', {}).reply.offline).toBe(1);
    expect(d.state.agents!['idle-one']).toMatchObject({ status: 'offline', load: 0 });
    d.register('idle-one');
    expect(d.state.agents!['idle-one']!.status).toBe('idle');
  });

  it('forgets an agent forgetAgentsAfterMs after it went offline, with every runtime entry; registering again starts a fresh record', () => {
    const d = domain();
    d.register('gone', { taskTypes: ['load', 'clean'] });
    d.register('stays');
    const registeredAt = d.state.agents!.gone!.registeredAt;
    takeOffline(d, 'gone');
    d.advance(SETTINGS.forgetAgentsAfterMs - 1);
    expect(d.run('hub.sweep', {}).reply.forgotten).toBe(0);
    d.advance(1);
    const { reply, tx } = d.run('hub.sweep', {});
    expect(reply.forgotten).toBe(1);
    expect(tx.changes.get(AGENTS_DOC)).toEqual([{ op: 'remove', path: '/gone' }]);
    expect(Object.keys(d.state.agents!)).toEqual(['stays']);
    const work = d.state.work;
    expect([work.connected.has('gone'), work.disconnected.has('gone'), work.byAgent.has('gone'), work.availableAgents().has('gone')]).toEqual([false, false, false, false]);
    expect(work.offline.size).toBe(0);
    d.register('gone');
    expect(d.state.agents!.gone).toMatchObject({ status: 'idle', taskTypes: ['*'], offlineSince: null, stats: { assigned: 0 } });
    expect(d.state.agents!.gone!.registeredAt).toBeGreaterThan(registeredAt);
  });

  it('counts from the latest time an agent went offline: coming back in between starts the wait over', () => {
    const d = domain();
    d.register('flaky');
    takeOffline(d, 'flaky');
    d.advance(SETTINGS.forgetAgentsAfterMs / 2);
    d.register('flaky');
    takeOffline(d, 'flaky');
    // Past the deadline of the first offline period: its entry is stale and skipped.
    d.advance(SETTINGS.forgetAgentsAfterMs / 2);
    expect(d.run('hub.sweep', {}).reply.forgotten).toBe(0);
    d.advance(SETTINGS.forgetAgentsAfterMs / 2 - 1);
    expect(d.run('hub.sweep', {}).reply.forgotten).toBe(0);
    d.advance(1);
    expect(d.run('hub.sweep', {}).reply.forgotten).toBe(1);
    expect(d.state.agents!.flaky).toBeUndefined();
  });

  it('keeps one entry per offline agent in the index however often it comes and goes', () => {
    const d = domain();
    d.register('flapping');
    for (let i = 0; i < 100; i++) {
      takeOffline(d, 'flapping');
      d.register('flapping');
    }
    takeOffline(d, 'flapping');
    expect(d.state.work.offline.size).toBe(1);
  });

  it('keeps the time an agent went offline in the document: a state rebuilt from it forgets the agent on the same schedule', () => {
    const d = domain();
    d.register('restarted');
    takeOffline(d, 'restarted');
    const since = d.state.agents!.restarted!.offlineSince!;
    // Stored documents loaded again 10 s later, as a restart does; the runtime index is rebuilt from them.
    const reloaded = domain(stateFromDocs(new Map(copyJson(storedDocs(d.state))), since + 10_000));
    reloaded.advance(since + 10_000 - 1_000); // a domain clock starts at 1,000
    reloaded.run('hub.recover', {});
    reloaded.advance(SETTINGS.forgetAgentsAfterMs - 10_000 - 1);
    expect(reloaded.run('hub.sweep', {}).reply.forgotten).toBe(0);
    reloaded.advance(1);
    expect(reloaded.run('hub.sweep', {}).reply.forgotten).toBe(1);
    expect(reloaded.state.agents!.restarted).toBeUndefined();
  });

  it('counts an offline agent of an older document, without the time, as offline from the restart', () => {
    const d = domain();
    d.register('old');
    takeOffline(d, 'old');
    delete d.state.agents!.old!.offlineSince;
    const reloaded = domain(stateFromDocs(new Map(copyJson(storedDocs(d.state))), 0));
    reloaded.advance(50_000);
    reloaded.run('hub.recover', {});
    expect(reloaded.state.agents!.old!.offlineSince).toBe(51_000);
    reloaded.advance(SETTINGS.forgetAgentsAfterMs - 1);
    expect(reloaded.run('hub.sweep', {}).reply.forgotten).toBe(0);
    reloaded.advance(1);
    expect(reloaded.run('hub.sweep', {}).reply.forgotten).toBe(1);
  });
});

describe('listing the agent pool a page at a time (domain)', () => {
  /** Every id, page by page. */
  function pageThrough(d: ReturnType<typeof domain>, limit: number, between?: () => void): string[] {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = listAgents(d.state, { limit, ...(cursor ? { cursor } : {}) });
      expect(page.items.length).toBeLessThanOrEqual(limit);
      seen.push(...page.items.map((agent) => agent.id));
      cursor = page.nextCursor ?? undefined;
      between?.();
    } while (cursor);
    return seen;
  }

  it('gives every agent once in id order, agents that join or are forgotten between pages included, the ids kept as the pool changes', () => {
    const d = domain();
    for (const id of ['m', 'c', 'x', 'a', 'q']) d.register(id);
    expect(pageThrough(d, 2)).toEqual(['a', 'c', 'm', 'q', 'x']);
    takeOffline(d, 'c');
    d.advance(SETTINGS.forgetAgentsAfterMs);
    let joined = false;
    // The cursor is a place in id order: an agent forgotten since it was read does not break paging.
    const seen = pageThrough(d, 2, () => {
      if (joined) return;
      joined = true;
      expect(d.run('hub.sweep', {}).reply.forgotten).toBe(1);
      d.register('b');
      d.register('z');
    });
    expect(seen).toEqual(['a', 'c', 'm', 'q', 'x', 'z']);
    expect(pageThrough(d, 100)).toEqual(Object.keys(d.state.agents!).sort());
    // As at start-up: the ids built from the document are the ones kept.
    expect(pageThrough({ ...d, state: stateFromDocs(new Map(storedDocs(d.state)), 5_000) }, 3)).toEqual(['a', 'b', 'm', 'q', 'x', 'z']);
  });

  it('forgets an agent whose registration was rolled back, and puts back one whose forgetting was', () => {
    const d = domain();
    d.register('kept');
    takeOffline(d, 'kept');
    d.advance(SETTINGS.forgetAgentsAfterMs);
    const batch = [
      (() => {
        const tx = new Transaction<Effect>(d.state);
        applyCommand({ state: d.state, tx, ctx: { now: 1_000_000, monotonicNow: 1_000_000, newId: (p) => `${p}_x`, settings: SETTINGS } }, { type: 'hub.sweep', input: {}, actor: ADMIN });
        return tx;
      })(),
      (() => {
        const tx = new Transaction<Effect>(d.state);
        const input = { ...RegisterAgentInput.parse({ agentId: 'new', agentType: 'worker' }), newConnection: true };
        applyCommand({ state: d.state, tx, ctx: { now: 1_000_000, monotonicNow: 1_000_000, newId: (p) => `${p}_x`, settings: SETTINGS } }, { type: 'agent.register', input, actor: { role: 'agent', name: 'new', agentId: 'new' } });
        return tx;
      })(),
    ];
    expect(listAgents(d.state, { limit: 10 }).items.map((agent) => agent.id)).toEqual(['new']);
    for (const tx of batch.reverse()) tx.rollback();
    expect(listAgents(d.state, { limit: 10 }).items.map((agent) => agent.id)).toEqual(['kept']);
  });
});

describe("an agent's recent durations (domain, manual clock)", () => {
  /** The nearest-rank p95 by its definition: the value at rank ceil(0.95 n) of the sorted values. */
  const bySorting = (values: number[]) => [...values].sort((a, b) => a - b)[Math.max(0, Math.ceil(values.length * 0.95) - 1)];

  it('finds the nearest-rank p95 of up to 21 values, ties included, as sorting does', () => {
    const next = random(7);
    for (let round = 0; round < 500; round++) {
      const values = Array.from({ length: 1 + Math.floor(next() * 21) }, () => Math.floor(next() * 8) * 10);
      expect(nearestRankP95(values), JSON.stringify(values)).toBe(bySorting(values));
    }
  });

  it('keeps the last 20 durations of a task type and their p95 after each completion', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.register('w');
    const asAgent = { role: 'agent' as const, name: 'w', agentId: 'w' };
    const durations = [50, 10, 90, 30, 70, 20, 80, 40, 60, 100, 15, 25, 35, 45, 55, 65, 75, 85, 95, 5, 12, 200, 7, 150, 33];
    durations.forEach((ms, i) => {
      d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: `job-${i}`, taskType: 't' }));
      const attempt = d.state.workflows.get(workflowId)!.workOrders[`job-${i}`]!.attempt!;
      const ref = { workflowId, workOrderId: `job-${i}`, attemptToken: attempt.token };
      d.run('task.progress', { ...ref, progress: 10 }, asAgent);
      d.advance(ms);
      d.run('task.complete', { ...ref, result: { ok: true } }, asAgent);
      const recent = durations.slice(Math.max(0, i - 19), i + 1);
      expect(d.state.agents!.w!.stats.byTaskType.t).toMatchObject({ completed: i + 1, recentMs: recent, p95Ms: bySorting(recent) });
    });
  });
});

describe("an agent's record of failures (domain, manual clock)", () => {
  it('holds no failure against an agent whose offer was still unanswered when the order ran out of time', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.register('w', { taskTypes: ['t'] });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'slow', taskType: 't', timeouts: { overallMs: 1_000, acceptMs: 5_000 } }));
    expect(d.state.workflows.get(workflowId)!.workOrders.slow!.state).toBe('offered');
    d.advance(1_000);
    const { tx } = d.run('hub.sweep', {});
    const workflow = d.state.workflows.get(workflowId)!;
    expect(workflow.workOrders.slow).toMatchObject({ state: 'failed', attempt: null, history: [] });
    // Told to drop the offer, but it never started the work: no failure on its record.
    expect(tx.effects).toContainEqual(expect.objectContaining({ type: 'cancel', agentId: 'w' }));
    expect(d.state.agents!.w).toMatchObject({ load: 0, status: 'idle', stats: { assigned: 1, failed: 0 } });
    expect(d.state.agents!.w!.stats.byTaskType).toEqual({});
    expect(workflow.agents.w).toMatchObject({ assigned: 1, failed: 0 });
  });
});

describe('offers that lapse while their agent drains (domain, manual clock)', () => {
  it('holds the silence of a draining agent against neither the order nor the agent, as its decline is not', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.register('w', { taskTypes: ['t'] });
    d.run('workOrder.create', CreateWorkOrderInput.parse({ workflowId, id: 'job', taskType: 't', timeouts: { acceptMs: 1_000 } }));
    d.run('agent.update', { agentId: 'w', status: 'draining' });
    d.advance(1_000);
    expect(d.run('hub.sweep', {}).reply.expiredOffers).toBe(1);
    expect(d.state.workflows.get(workflowId)!.workOrders.job).toMatchObject({ state: 'queued', declinedBy: [] });
    expect(d.state.agents!.w!.stats.declined).toBe(0);
    // Active again, it is offered the order once more.
    d.run('agent.update', { agentId: 'w', status: 'active' });
    expect(d.state.workflows.get(workflowId)!.workOrders.job).toMatchObject({ state: 'offered', attempt: { agentId: 'w' } });
  });
});

describe("a drain for the agent's connection only (domain, manual clock)", () => {
  const asAgent = (agentId: string) => ({ role: 'agent', name: agentId, agentId }) as const;
  const drainForConnection = (d: ReturnType<typeof domain>, agentId: string) =>
    d.run('agent.status', { status: 'draining', untilDisconnect: true }, asAgent(agentId)).reply;

  it('ends when the connection goes, when another registers the id, and at a restart; never leaves the id draining for its return', () => {
    const d = domain();
    for (const id of ['closes', 'replaced', 'restarted']) {
      d.register(id);
      expect(drainForConnection(d, id)).toMatchObject({ status: 'draining', drainingUntilDisconnect: true });
    }
    d.run('agent.disconnect', { agentId: 'closes' });
    d.register('replaced');
    const reloaded = domain(stateFromDocs(new Map(copyJson(storedDocs(d.state))), 0));
    reloaded.run('hub.recover', {});
    const drain = ({ status, drainingUntilDisconnect, drainingOnReturn }: Agent) => ({ status, drainingUntilDisconnect, drainingOnReturn });
    expect([d.state.agents!.closes!, d.state.agents!.replaced!, reloaded.state.agents!.restarted!].map(drain)).toEqual(
      Array(3).fill({ status: 'idle', drainingUntilDisconnect: undefined, drainingOnReturn: undefined }),
    );
    // Gone past its grace period: it comes back taking work, not draining.
    d.advance(SETTINGS.graceMs);
    d.run('hub.sweep', {});
    expect(drain(d.state.agents!.closes!)).toEqual({ status: 'offline', drainingUntilDisconnect: undefined, drainingOnReturn: undefined });
    d.register('closes');
    expect(d.state.agents!.closes!.status).toBe('idle');
  });

  it('does not leave the id draining when the disconnect was not stored and the agent went offline before it was', () => {
    const d = domain();
    d.register('unstored');
    drainForConnection(d, 'unstored');
    // The journal write of the disconnect failed: undone in the documents, but the socket is gone.
    d.run('agent.disconnect', { agentId: 'unstored' }).tx.rollback();
    d.advance(SETTINGS.graceMs);
    d.run('hub.sweep', {});
    expect(d.state.agents!.unstored).toMatchObject({ status: 'offline' });
    expect(d.state.agents!.unstored!.drainingOnReturn).toBeUndefined();
    d.register('unstored');
    expect(d.state.agents!.unstored!.status).toBe('idle');
  });

  it('gives way to a plain drain, before it or after it: that one is for good', () => {
    const d = domain();
    d.register('drained-before');
    d.run('agent.update', { agentId: 'drained-before', status: 'draining' });
    expect(drainForConnection(d, 'drained-before').drainingUntilDisconnect).toBeUndefined();
    d.register('drained-after');
    drainForConnection(d, 'drained-after');
    d.run('agent.update', { agentId: 'drained-after', status: 'draining' });
    for (const id of ['drained-before', 'drained-after']) d.run('agent.disconnect', { agentId: id });
    expect([d.state.agents!['drained-before']!.status, d.state.agents!['drained-after']!.status]).toEqual(['draining', 'draining']);
  });
});
