import { describe, expect, it } from 'vitest';
import type { Agent } from '../../shared/schemas/agent.ts';
import { canServe, chooseAgent, eligible, queueKey, score, type Situation } from '../../server/domain/work/assignment.ts';

function makeAgent(id: string, fields: Partial<Agent> = {}): Agent {
  return {
    id,
    agentType: 'worker',
    capabilities: [],
    taskTypes: ['*'],
    labels: {},
    maxConcurrentTasks: 2,
    status: 'idle',
    note: null,
    load: 0,
    registeredAt: 0,
    lastAssignedAt: null,
    stats: { assigned: 0, completed: 0, failed: 0, declined: 0, byTaskType: {} },
    ...fields,
  };
}

const order = (fields: Partial<{ taskType: string; requirements: string[]; preferences: Record<string, number>; declinedBy: string[] }> = {}) => ({
  taskType: 'analysis',
  requirements: [],
  preferences: {},
  declinedBy: [],
  ...fields,
});

const free: Situation = { connected: true, activeInWorkflow: false, workflowAgents: 0, maxConcurrentAgents: null };

describe('assignment policy: hard filter', () => {
  it('requires every required capability and a handled task type', () => {
    const agent = makeAgent('a', { capabilities: ['csv', 'sql'], taskTypes: ['loading'] });
    expect(canServe(agent, { taskType: 'loading', requirements: ['csv'] })).toBe(true);
    expect(canServe(agent, { taskType: 'loading', requirements: ['csv', 'parquet'] })).toBe(false);
    expect(canServe(agent, { taskType: 'analysis', requirements: [] })).toBe(false);
    expect(canServe(makeAgent('b', { taskTypes: ['*'] }), { taskType: 'anything', requirements: [] })).toBe(true);
  });

  it('excludes full, draining, disconnected and declining agents, and respects maxConcurrentAgents', () => {
    expect(eligible(makeAgent('a', { load: 2 }), order(), free)).toBe(false);
    expect(eligible(makeAgent('a', { status: 'draining' }), order(), free)).toBe(false);
    expect(eligible(makeAgent('a'), order(), { ...free, connected: false })).toBe(false);
    expect(eligible(makeAgent('a'), order({ declinedBy: ['a'] }), free)).toBe(false);
    const full = { ...free, workflowAgents: 3, maxConcurrentAgents: 3 };
    expect(eligible(makeAgent('a'), order(), full)).toBe(false);
    expect(eligible(makeAgent('a'), order(), { ...full, activeInWorkflow: true })).toBe(true);
    expect(eligible(makeAgent('a'), order(), free)).toBe(true);
  });
});

describe('assignment policy: score and ties', () => {
  it('prefers the agent with more of the preferred capabilities', () => {
    const gpu = makeAgent('gpu', { capabilities: ['gpu'] });
    const cpu = makeAgent('cpu');
    const wanted = order({ preferences: { gpu: 5 } });
    expect(score(gpu, wanted, null).preference).toBe(1);
    expect(chooseAgent([cpu, gpu], wanted)?.id).toBe('gpu');
  });

  it('prefers the more reliable, then the faster agent on this task type', () => {
    const stats = (completed: number, failed: number, avgMs: number) => ({
      assigned: completed + failed,
      completed,
      failed,
      declined: 0,
      byTaskType: { analysis: { completed, failed, avgMs, p95Ms: avgMs, recentMs: [] } },
    });
    const flaky = makeAgent('flaky', { stats: stats(5, 5, 100) });
    const solid = makeAgent('solid', { stats: stats(10, 0, 100) });
    expect(chooseAgent([flaky, solid], order())?.id).toBe('solid');
    const slow = makeAgent('slow', { stats: stats(10, 0, 400) });
    const fast = makeAgent('fast', { stats: stats(10, 0, 100) });
    expect(score(fast, order(), 100).speed).toBe(1);
    expect(score(slow, order(), 100).speed).toBe(0.25);
    expect(chooseAgent([slow, fast], order())?.id).toBe('fast');
  });

  it('counts an agent whose tasks took 0 ms on average as the fastest, ahead of slower and untried agents', () => {
    const stats = (avgMs: number) => ({ assigned: 3, completed: 3, failed: 0, declined: 0, byTaskType: { analysis: { completed: 3, failed: 0, avgMs, p95Ms: avgMs, recentMs: [] } } });
    const instant = makeAgent('z-instant', { stats: stats(0) });
    const slow = makeAgent('a-slow', { stats: stats(40) });
    const untried = makeAgent('a-untried');
    expect(score(instant, order(), 0).speed).toBe(1);
    expect(score(slow, order(), 0).speed).toBe(0);
    expect(chooseAgent([slow, untried, instant], order())?.id).toBe('z-instant');
  });

  it('prefers free capacity, and breaks ties by least recently assigned', () => {
    const busy = makeAgent('busy', { load: 1 });
    const idle = makeAgent('idle');
    expect(chooseAgent([busy, idle], order())?.id).toBe('idle');
    const recent = makeAgent('recent', { lastAssignedAt: 2000 });
    const earlier = makeAgent('earlier', { lastAssignedAt: 1000 });
    const never = makeAgent('never');
    expect(chooseAgent([recent, earlier], order())?.id).toBe('earlier');
    expect(chooseAgent([recent, earlier, never], order())?.id).toBe('never');
  });

  it('chooses the same agent whatever order the candidates come in, near-ties included', () => {
    // Scores 6e-10 apart in a row: p and q, q and r within 1e-9 of each other, p and r not.
    const p = makeAgent('p', { capabilities: ['big'] });
    const q = makeAgent('q', { capabilities: ['big', 'c1'] });
    const r = makeAgent('r', { capabilities: ['big', 'c2'] });
    const wanted = order({ preferences: { big: 100, c1: 1.5e-8, c2: 3e-8 } });
    const orders = [[p, q, r], [p, r, q], [q, p, r], [q, r, p], [r, p, q], [r, q, p]];
    const chosen = new Set(orders.map((candidates) => chooseAgent(candidates, wanted)?.id));
    expect(chosen.size).toBe(1);
  });
});

describe('assignment policy: queue order', () => {
  it('serves higher priority first, and lets age lift an order one level per agingMs', () => {
    const aging = 1000;
    const critical = queueKey('critical', 10_000, aging);
    const low = queueKey('low', 10_000, aging);
    expect(critical).toBeGreaterThan(low);
    // A low order that waited more than three levels' worth beats a critical one that just came.
    expect(queueKey('low', 10_000 - 3 * aging - 1, aging)).toBeGreaterThan(critical);
    expect(queueKey('normal', 5_000, aging)).toBeGreaterThan(queueKey('normal', 6_000, aging));
  });
});
