import { startGenerator, startHub, startRawServer, stopAll, type BenchContext } from './launch.ts';
import type { BenchChild } from './processes.ts';
import { check, round, type Check, type ScenarioResult } from './report.ts';

/** Heap and RSS per connection as the count grows, after a forced GC each time. */
async function perConnection(server: BenchChild, generator: BenchChild, url: string, counts: number[], label: string) {
  const gc = () => server.request<NodeJS.MemoryUsage>('gc');
  const base = await gc();
  const rows: Array<{ agents: number; heapPerAgentKB: number; rssPerAgentKB: number; heapUsedMB: number }> = [];
  let connected = 0;
  for (const count of counts) {
    await generator.request('agents.connect', { pool: `${label}-${count}`, url, count: count - connected, prefix: `idle-${label}-${count}`, taskType: 'bench.none', takeWork: false });
    connected = count;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = await gc();
    rows.push({
      agents: count,
      heapPerAgentKB: round((now.heapUsed - base.heapUsed) / count / 1024, 2),
      rssPerAgentKB: round((now.rss - base.rss) / count / 1024, 2),
      heapUsedMB: round(now.heapUsed / 2 ** 20, 1),
    });
  }
  for (const count of counts) await generator.request('agents.close', { pool: `${label}-${count}` });
  return { baseHeapMB: round(base.heapUsed / 2 ** 20, 1), rows };
}

/**
 * Scenario 5: memory per idle agent. Registered agents (bare sockets, `agent.register`) that
 * do nothing; the hub's heap after a forced GC, before and after, divided by the agents. The raw
 * column is the same count of idle connections to a bare socket.io server.
 */
export async function runMemory(ctx: BenchContext): Promise<ScenarioResult> {
  const started = performance.now();
  const counts = ctx.scale.memory.agents;
  ctx.log(`memory: ${counts.join(' then ')} idle agents`);
  const { hub, ready } = await startHub(ctx, 'memory', {}, ['--expose-gc']);
  const { raw, url } = await startRawServer(ctx, ['--expose-gc']);
  const generator = await startGenerator('idle-agents');
  try {
    const hubRows = await perConnection(hub, generator, ready.url, counts, 'hub');
    const rawRows = await perConnection(raw, generator, url, counts, 'raw');
    const checks: Check[] = [];
    hubRows.rows.forEach((row, i) => {
      const base = rawRows.rows[i]!;
      checks.push(
        check(`heap per idle agent at ${row.agents.toLocaleString('en-US')}`, 'KB', row.heapPerAgentKB, base.heapPerAgentKB, { max: 20, text: '≤ 20 KB' }),
        check(`RSS per idle agent at ${row.agents.toLocaleString('en-US')}`, 'KB', row.rssPerAgentKB, base.rssPerAgentKB),
      );
    });
    return {
      name: 'memory',
      title: '5. Memory per idle agent',
      checks,
      details: { hub: hubRows, raw: rawRows },
      notes: ['Hub and raw server run with --expose-gc; three full collections before each reading. RSS is indicative only (the allocator keeps freed pages).'],
      durationMs: performance.now() - started,
    };
  } finally {
    await stopAll(generator, hub, raw);
  }
}
