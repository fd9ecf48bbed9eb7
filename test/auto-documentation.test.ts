import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CreateWorkflowInput } from '../shared/schemas/workflow.ts';
import { HubDirectory } from '../server/hub-directory.ts';
import { createLogger } from '../server/logger.ts';
import { AutoDocumentation } from '../server/reports/auto-documentation.ts';
import { StateWriter } from '../server/state-writer.ts';
import { storedDocs } from '../server/domain/machinery/state.ts';
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

  it('matches a follower\'s replica loaded again: a workflow it no longer holds is forgotten, one that ended meanwhile gets its final write', async () => {
    const dataDir = tempDir();
    const leader = await StateWriter.open({ store: new MemoryStore(), settings: SETTINGS });
    for (const id of ['gone', 'ends']) {
      const input = CreateWorkflowInput.parse({ id, userQuery: 'q', outputFolder: join(dataDir, 'workflows', id), config: { enableAutoDocumentation: true } });
      await leader.dispatch({ type: 'workflow.create', input, actor: ADMIN });
      await leader.dispatch({ type: 'workflow.start', input: { workflowId: id }, actor: ADMIN });
    }
    const docs = () => new Map(structuredClone(storedDocs(leader.state)));
    const store = new MemoryStore();
    const follower = await StateWriter.open({ store, settings: SETTINGS, follower: true });
    const auto = new AutoDocumentation(follower, new WorkflowReads(follower, store.archive, SETTINGS.agingMs), createLogger('silent'), await HubDirectory.open(dataDir), new ReportRenderer());
    const held = auto as unknown as { timers: Map<string, unknown>; written: Map<string, number> };
    follower.replaceState(docs(), leader.lastSeq);
    expect([...held.timers.keys()].sort()).toEqual(['ends', 'gone']);

    // The replica loaded again lacks one workflow (its creation was among the records a truncation deleted) and holds the other ended.
    await leader.dispatch({ type: 'workflow.complete', input: { workflowId: 'ends' }, actor: ADMIN });
    const reloaded = docs();
    reloaded.delete('gone');
    follower.replaceState(reloaded, leader.lastSeq);
    await auto.write('ends');
    expect([[...held.timers.keys()], [...held.written.keys()]]).toEqual([[], ['ends']]);
    await auto.close();
    await follower.close();
    await leader.close();
  });
});
