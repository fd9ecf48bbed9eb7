import { describe, expect, it } from 'vitest';
import type { Workflow } from '../../shared/schemas/workflow.ts';
import { control, monitor, tempDir, TOKENS } from '../helpers/hub.ts';
import { HubUnderTest } from './cluster.ts';
import { LineProcess } from './process-lines.ts';

const LEASE_MS = 1000;
const SWEEP_MS = 100;
const GRACE_MS = 400;
const ORDERS = 24;

describe('agents that die or freeze mid-task', () => {
  it('completes every work order exactly once when one agent is killed and another paused past its lease', async () => {
    const hub = await HubUnderTest.create(tempDir(), { sweepIntervalMs: SWEEP_MS, graceMs: GRACE_MS, backoffBaseMs: 50 });
    await hub.start();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'faults', userQuery: 'kill and pause agents' });
    await wf.start();
    const agents = ['victim', 'sleeper', 'steady-1', 'steady-2'].map((id) => ({ id, process: LineProcess.start('agent-process.ts', [hub.url, TOKENS.agent, id]) }));
    await Promise.all(agents.map((a) => a.process.next((line) => line === 'READY')));
    const [victim, sleeper] = agents as [(typeof agents)[0], (typeof agents)[0]];
    const watcher = await monitor(hub);
    const mirror = await watcher.subscribe<Workflow>(wf.id);

    await wf.createWorkOrders(Array.from({ length: ORDERS }, (_, i) => ({ id: `job-${i}`, taskType: 'job', input: { ms: 400 }, timeouts: { leaseMs: LEASE_MS } })));

    // kill -9 the victim in the middle of a task.
    const victimTask = (await victim.process.next((line) => line.startsWith('START '))).split(' ')[1]!;
    const killedAt = Date.now();
    victim.process.child.kill('SIGKILL');

    // Freeze the sleeper mid-task until the hub has given its task to someone else, then wake it.
    const sleeperTask = (await sleeper.process.next((line) => line.startsWith('START '))).split(' ')[1]!;
    sleeper.process.child.kill('SIGSTOP');
    await mirror.until((w) => !!w.workOrders[sleeperTask]?.history.some((h) => h.agentId === 'sleeper' && h.outcome === 'lease_expired'), { what: 'sleeper lease expired', timeoutMs: 60_000 });
    sleeper.process.child.kill('SIGCONT');

    const done = await mirror.until((w) => w.workOrderCounts.completed === ORDERS, { what: 'all orders completed', timeoutMs: 60_000 });
    for (const order of Object.values(done.workOrders)) {
      expect(order.history.filter((h) => h.outcome === 'completed'), order.id).toHaveLength(1);
    }
    // The victim's task went back to the queue within the lease plus one sweep.
    const lost = done.workOrders[victimTask]!.history.find((h) => h.agentId === 'victim')!;
    expect(['agent_lost', 'lease_expired']).toContain(lost.outcome);
    expect(lost.endedAt - killedAt).toBeLessThanOrEqual(LEASE_MS + SWEEP_MS + 500);
    // Every order's completion was acknowledged to exactly one agent. The ack reaches an agent's
    // output after the hub's patch may reach the mirror (the sleeper prints its own once it wakes).
    const completedBy = (id: string) => done.workOrders[id]!.history.find((h) => h.outcome === 'completed')!.agentId;
    const acked = (id: string) => (line: string) => line.startsWith(`REPORT ${id} completed accepted`);
    await Promise.all(
      Object.keys(done.workOrders)
        .filter((id) => completedBy(id) !== victim.id)
        .map((id) => agents.find((a) => a.id === completedBy(id))!.process.next(acked(id))),
    );
    const accepted = agents.flatMap((a) => a.process.lines.filter((l) => l.startsWith('REPORT ') && l.includes(' completed accepted')).map((l) => l.split(' ')[1]));
    expect(accepted.sort()).toEqual(Object.keys(done.workOrders).sort());
    // The sleeper's late report, if it made one, was refused.
    const late = sleeper.process.lines.filter((l) => l.startsWith(`REPORT ${sleeperTask} completed`));
    for (const line of late) expect(line).toContain('refused STALE_ATTEMPT');
    console.log(`agent faults: victim's ${victimTask} requeued ${lost.endedAt - killedAt} ms after kill -9 (${lost.outcome}); sleeper's late reports: ${late.length}`);
    watcher.close();
    client.close();
    expect(await hub.stop()).toBe(0);
  }, 120_000);
});
