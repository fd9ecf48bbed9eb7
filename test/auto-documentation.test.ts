import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { HubDirectory } from '../server/hub-directory.ts';
import { createLogger } from '../server/logger.ts';
import { AutoDocumentation } from '../server/reports/auto-documentation.ts';
import { StateWriter } from '../server/state-writer.ts';
import { WorkflowReads } from '../server/workflow-reads.ts';
import { ReportRenderer } from '../server/reports/report-renderer.ts';
import { ADMIN, SETTINGS } from './helpers/domain.ts';
import { tempDir } from './helpers/hub.ts';
import { MemoryStore } from './helpers/memory-store.ts';

describe('automatic documentation (no network)', () => {
  it('forgets a workflow leaving memory: its timer and the version it last wrote', async () => {
    const store = new MemoryStore();
    const hub = await StateWriter.open({ store, settings: SETTINGS });
    const dataDir = tempDir();
    const auto = new AutoDocumentation(hub, new WorkflowReads(hub, store.archive, SETTINGS.agingMs), createLogger('silent'), await HubDirectory.open(dataDir), new ReportRenderer());
    for (const id of ['ended', 'running']) {
      const input = CreateWorkflowInput.parse({ id, userQuery: 'q', outputFolder: join(dataDir, 'workflows', id), config: { enableAutoDocumentation: true } });
      await hub.dispatch({ type: 'workflow.create', input, actor: ADMIN });
      await hub.dispatch({ type: 'workflow.start', input: { workflowId: id }, actor: ADMIN });
    }
    await hub.dispatch({ type: 'workflow.complete', input: { workflowId: 'ended' }, actor: ADMIN });
    // Queued behind the final write the completion started, so it is done when this is.
    await auto.write('ended');
    // What is kept per workflow is the cost in question: look at it.
    const held = auto as unknown as { timers: Map<string, unknown>; written: Map<string, number> };
    expect([[...held.timers.keys()], [...held.written.keys()]]).toEqual([['running'], ['ended']]);

    // Archived and evicted: nothing is kept for it any more.
    await hub.dispatch({ type: 'hub.evict', input: { workflowId: 'ended', version: 3 }, actor: ADMIN });
    expect(hub.state.workflows.has('ended')).toBe(false);
    expect([[...held.timers.keys()], [...held.written.keys()]]).toEqual([['running'], []]);
    auto.forget('running');
    expect([held.timers.size, held.written.size]).toEqual([0, 0]);
    await auto.close();
    await hub.close();
  });
});
