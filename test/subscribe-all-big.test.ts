import { describe, expect, it } from 'vitest';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { control, monitor, startHub } from './helpers/hub.ts';

/** More than the 64 transfers one connection may hold open at once. */
const WORKFLOWS = 66;

describe('subscribeAll to many big workflows', () => {
  it('mirrors every workflow, though one answer carries more big snapshots than a connection may hold transfers', async () => {
    const hub = await startHub();
    const client = await control(hub);
    // Five orders of 250 KB each: every workflow is over the 1 MB a reply holds inline.
    const input = 'x'.repeat(250_000);
    const ids: string[] = [];
    for (let w = 0; w < WORKFLOWS; w++) {
      const wf = await client.createWorkflow({ userQuery: `big ${w}` });
      await wf.createWorkOrders([0, 1, 2].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
      await wf.createWorkOrders([3, 4].map((i) => ({ id: `o${i}`, taskType: 'nobody-serves-this', input })));
      ids.push(wf.id);
    }
    const raw = await monitor(hub);
    const answer = await raw.connection.request('subscribeAll', { versions: {} });
    expect(answer.docs.filter((s) => s.mode === 'snapshot' && s.transfer).length).toBe(WORKFLOWS);
    await raw.close();

    const watcher = await monitor(hub);
    const mirrors = await watcher.subscribeAll();
    for (const id of ids) expect(Object.keys((mirrors.get(id)?.state as Workflow | undefined)?.workOrders ?? {})).toHaveLength(5);
  });
});
