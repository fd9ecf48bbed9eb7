import { describe, expect, it } from 'vitest';
import { DataReferenceSpec } from '../../shared/schemas/data.ts';
import { WorkOrderState } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { replayChanges } from '../../server/domain/machinery/replay.ts';
import { emptyState, storedDocs, type HubState } from '../../server/domain/machinery/state.ts';
import { workflowView } from '../../server/domain/workflows/views.ts';
import { listAgents } from '../../server/domain/work/agents.ts';
import { decodeRecord, encodeRecord } from '../../server/store/records.ts';
import { domain } from '../helpers/domain.ts';
import { randomWorker, seeded, TASK_TYPES } from '../helpers/random-work.ts';

/** A leader's domain whose every command is also replayed, through its journal line, into a follower's state. */
function leaderAndFollower() {
  const d = domain();
  const follower = emptyState();
  const run = d.run.bind(d);
  let seq = 0;
  d.run = ((...args: Parameters<typeof run>) => {
    const result = run(...args);
    const { tx } = result;
    if (!tx.empty) {
      const line = encodeRecord({ seq: ++seq, at: 0, changes: [...tx.changes].map(([doc, ops]) => ({ doc, v: tx.version(doc), ops })) });
      replayChanges(follower, decodeRecord(line.trimEnd())!.changes);
    }
    return result;
  }) as typeof d.run;
  return { d, follower };
}

const VIEWS = [
  { kind: 'summary' as const },
  ...[undefined, ...WorkOrderState.options].flatMap((state) => [undefined, ...TASK_TYPES].map((taskType) => ({ kind: 'orders' as const, state, taskType, limit: 50 }))),
];

function expectSameViews(leader: HubState, follower: HubState, workflowId: string): void {
  for (const view of VIEWS) expect(workflowView(follower, workflowId, view), JSON.stringify(view)).toEqual(workflowView(leader, workflowId, view));
}

describe('replaying committed records into a follower', () => {
  it('leaves the same documents, versions and views as the leader, whether its catalogs were built before or during the work', () => {
    for (const seed of [3, 17, 41]) {
      const { d, follower } = leaderAndFollower();
      const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
      d.run('workflow.start', { workflowId });
      const random = seeded(seed);
      const step = randomWorker(d, workflowId, random);
      for (let i = 0; i < 400; i++) {
        step();
        // Views asked for midway build the follower's catalog, which the replay must then keep.
        if (i === 150) expectSameViews(d.state, follower, workflowId);
        if (i % 50 === 0) d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: `d${i}`, path: 's3://b/d' }), observed: null }] });
        if (i % 97 === 0) d.run('workflow.progress', { workflowId, stage: 'load', percentage: i / 10 });
      }
      expect(JSON.stringify(storedDocs(follower))).toBe(JSON.stringify(storedDocs(d.state)));
      expect([...follower.versions]).toEqual([...d.state.versions]);
      expectSameViews(d.state, follower, workflowId);
      expect(listAgents(follower, { limit: 100 })).toEqual(listAgents(d.state, { limit: 100 }));
    }
  });

  it('drops a workflow the leader evicted, and its indexes with it', () => {
    const { d, follower } = leaderAndFollower();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'gone', userQuery: 'q' })).reply.workflow.id;
    d.run('workflow.start', { workflowId });
    d.run('workflow.cancel', { workflowId, reason: 'done' });
    expectSameViews(d.state, follower, workflowId);
    expect(d.run('hub.evict', { workflowId, version: d.state.versions.get(workflowId)! }).reply.evicted).toBe(true);
    expect(follower.workflows.has(workflowId)).toBe(false);
    expect(follower.versions.has(workflowId)).toBe(false);
  });

  it('refuses a record that does not fit the state it is applied to', () => {
    const state = emptyState();
    expect(() => replayChanges(state, [{ doc: 'wf_missing', v: 2, ops: [{ op: 'replace', path: '/status', value: 'completed' }] }])).toThrow();
  });
});
