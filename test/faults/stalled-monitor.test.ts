import { describe, expect, it } from 'vitest';
import { control, monitor, tempDir, TOKENS } from '../helpers/hub.ts';
import { HubUnderTest } from './cluster.ts';
import { LineProcess } from './process-lines.ts';

/** One value from the hub's /metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })).text();
  return Number(text.split('\n').find((line) => line.startsWith(`${name} `))!.split(' ')[1]);
}

const p99 = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.ceil(samples.length * 0.99) - 1]!;

describe('a monitor frozen under load', () => {
  it('keeps the hub’s memory bounded and the other monitors’ latency steady', async () => {
    const hub = await HubUnderTest.create(tempDir(), { patchIntervalMs: 10, maxQueuedPackets: 32 });
    await hub.start();
    const client = await control(hub);
    const wf = await client.createWorkflow({ id: 'busy', userQuery: 'heavy updates' });
    const objective = await wf.addObjective({ name: 'churn' });
    const frozen = LineProcess.start('monitor-process.ts', [hub.url, TOKENS.monitor, wf.id]);
    await frozen.next((line) => line === 'READY');
    const healthy = await monitor(hub);
    const mirror = await healthy.subscribe(wf.id);

    let mostQueued = 0;
    /** Sends `count` 18 KB updates; returns how long each took to reach the healthy monitor (ms). */
    const churn = async (count: number) => {
      const staleness: number[] = [];
      for (let i = 0; i < count; i++) {
        if (i % 50 === 0) mostQueued = Math.max(mostQueued, await metric(hub.url, 'switchboard_monitor_queued_packets'));
        const text = String(i).padEnd(9000, '.');
        const made = performance.now();
        await wf.updateObjective(objective.id, { description: text, target: text });
        await mirror.until((_, version) => version >= wf.version, { what: `version ${wf.version}` });
        staleness.push(performance.now() - made);
      }
      return staleness;
    };

    const before = await churn(150);
    frozen.child.kill('SIGSTOP');
    const heapBefore = await metric(hub.url, 'nodejs_heap_used_bytes');
    const during = await churn(750);
    const heapAfter = await metric(hub.url, 'nodejs_heap_used_bytes');
    const produced = 750 * 18_000;
    expect(await metric(hub.url, 'switchboard_stalled_subscribers_total')).toBeGreaterThanOrEqual(1);
    // What the hub holds for the frozen monitor stays under the bound instead of growing with the load.
    expect(mostQueued).toBeLessThanOrEqual(32 + 4);
    expect(p99(during)).toBeLessThanOrEqual(Math.max(3 * p99(before), p99(before) + 100));

    frozen.child.kill('SIGCONT');
    const final = wf.version;
    await frozen.next((line) => line.startsWith('VERSION ') && Number(line.split(' ')[1]) >= final);
    console.log(
      `stalled monitor: at most ${mostQueued} packets queued; heap ${((heapAfter - heapBefore) / 1e6).toFixed(1)} MB (uncollected garbage included) over ${(produced / 1e6).toFixed(0)} MB of changes; ` +
        `healthy staleness p99 ${p99(before).toFixed(1)} ms before, ${p99(during).toFixed(1)} ms during`,
    );
    healthy.close();
    client.close();
    expect(await hub.stop()).toBe(0);
  }, 180_000);
});
