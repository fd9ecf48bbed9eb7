import { describe, expect, it } from 'vitest';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { replayRecord } from '../../server/store/records.ts';
import type { StoredDoc } from '../../server/domain/machinery/state.ts';
import { domain } from '../helpers/domain.ts';
import { codeOfCall } from '../helpers/errors.ts';

describe('evicting an archived workflow (domain)', () => {
  it('takes it out of memory at its version, records a removal that replay applies, and undoes cleanly', () => {
    const d = domain();
    d.run('workflow.create', CreateWorkflowInput.parse({ id: 'w', userQuery: 'q' }));
    d.run('workflow.cancel', { workflowId: 'w' });
    const stored = new Map<string, StoredDoc>([['w', { v: 2, doc: structuredClone(d.state.workflows.get('w')) }]]);

    const { reply, tx } = d.run('hub.evict', { workflowId: 'w', version: 2 });
    expect(reply).toEqual({ evicted: true });
    expect(d.state.workflows.has('w')).toBe(false);
    expect(d.state.versions.has('w')).toBe(false);
    const ops = tx.changes.get('w')!;
    expect(ops).toEqual([{ op: 'remove', path: '' }]);
    replayRecord(stored, { seq: 3, at: 0, changes: [{ doc: 'w', v: 0, ops }] });
    expect(stored.has('w')).toBe(false);

    const before = d.state.workflows;
    tx.rollback();
    expect(d.state.workflows.get('w')?.status).toBe('cancelled');
    expect(d.state.versions.get('w')).toBe(2);
    expect(before).toBe(d.state.workflows);
  });

  it('refuses changes to an archived workflow with INVALID_TRANSITION and its id with CONFLICT', () => {
    const d = domain();
    d.state.archived = new Set(['gone']);
    expect(codeOfCall(() => d.run('workflow.start', { workflowId: 'gone' }))).toBe('INVALID_TRANSITION');
    expect(codeOfCall(() => d.run('workflow.create', CreateWorkflowInput.parse({ id: 'gone', userQuery: 'q' })))).toBe('CONFLICT');
    expect(codeOfCall(() => d.run('workflow.start', { workflowId: 'never' }))).toBe('NOT_FOUND');
  });
});
