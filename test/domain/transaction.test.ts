import { describe, expect, it } from 'vitest';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { docRoot, emptyState, putDoc, stateFromDocs, storedDocs, versionOf, type HubState } from '../../server/domain/machinery/state.ts';
import { CreateWorkOrdersInput } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { domain } from '../helpers/domain.ts';

/** A state with document `wf`: fields, a nested object and arrays, at version 3. */
function stateWithDoc(): HubState {
  const state = emptyState();
  putDoc(state, 'wf', { status: 'running', counts: { queued: 2, done: 0 }, tags: ['a', 'b'], items: [{ n: 1 }, { n: 2 }, { n: 3 }] });
  state.versions.set('wf', 3);
  return state;
}

describe('Transaction', () => {
  it('rolls back every kind of write, newest first, to the state and versions before it', () => {
    const state = stateWithDoc();
    const before = JSON.stringify(docRoot(state, 'wf'));
    const tx = new Transaction(state);
    let runtime = 0;
    tx.set('wf', ['status'], 'done');
    tx.set('wf', ['note'], 'added');
    tx.assign('wf', ['counts'], { queued: 1, done: 1, failed: 4 });
    tx.set('wf', ['tags', 1], 'c');
    tx.append('wf', ['tags'], 'd');
    tx.remove('wf', ['items', 1]);
    tx.remove('wf', ['counts', 'queued']);
    tx.append('wf', ['items'], { n: 4 });
    tx.putDoc('other', { fresh: true });
    tx.onUndo(() => runtime++);
    tx.set('wf', ['status'], 'archived');
    expect(versionOf(state, 'wf')).toBe(4);
    expect(versionOf(state, 'other')).toBe(1);
    expect(docRoot(state, 'wf')).toEqual({ status: 'archived', note: 'added', counts: { done: 1, failed: 4 }, tags: ['a', 'c', 'd'], items: [{ n: 1 }, { n: 3 }, { n: 4 }] });

    tx.rollback();
    expect(docRoot(state, 'wf')).toEqual(JSON.parse(before));
    expect(docRoot(state, 'other')).toBeUndefined();
    expect(versionOf(state, 'wf')).toBe(3);
    expect(state.versions.has('other')).toBe(false);
    expect(runtime).toBe(1);
    // A second rollback has nothing left to undo.
    tx.rollback();
    expect(runtime).toBe(1);
  });

  it('restores a replaced document and a dropped one with its version', () => {
    const state = stateWithDoc();
    const original = docRoot(state, 'wf');
    const tx = new Transaction(state);
    tx.putDoc('wf', { replaced: true });
    expect(docRoot(state, 'wf')).toEqual({ replaced: true });
    tx.rollback();
    expect(docRoot(state, 'wf')).toBe(original);
    expect(versionOf(state, 'wf')).toBe(3);

    const drop = new Transaction(state);
    drop.dropDoc('wf');
    expect(docRoot(state, 'wf')).toBeUndefined();
    drop.rollback();
    expect(docRoot(state, 'wf')).toBe(original);
    expect(versionOf(state, 'wf')).toBe(3);
  });

  it('appends to an empty array without touching any other empty array, and rolls that back', () => {
    const state = emptyState();
    const setup = new Transaction(state);
    setup.putDoc('wf', { orders: { a: { history: [], outputs: [] }, b: { history: [] } }, tags: [] });
    const tx = new Transaction(state);
    tx.append('wf', ['orders', 'a', 'history'], { n: 1 });
    tx.append('wf', ['tags'], 'x');
    tx.append('wf', ['tags'], 'y');
    expect(docRoot(state, 'wf')).toEqual({ orders: { a: { history: [{ n: 1 }], outputs: [] }, b: { history: [] } }, tags: ['x', 'y'] });
    expect(tx.changes.get('wf')).toEqual([
      { op: 'add', path: '/orders/a/history/0', value: { n: 1 } },
      { op: 'add', path: '/tags/0', value: 'x' },
      { op: 'add', path: '/tags/1', value: 'y' },
    ]);
    tx.rollback();
    expect(docRoot(state, 'wf')).toEqual({ orders: { a: { history: [], outputs: [] }, b: { history: [] } }, tags: [] });
    const again = new Transaction(state);
    again.append('wf', ['orders', 'b', 'history'], { n: 2 });
    expect(docRoot(state, 'wf')).toEqual({ orders: { a: { history: [], outputs: [] }, b: { history: [{ n: 2 }] } }, tags: [] });
  });

  it('gives orders loaded from disk the same empty arrays, each still appended to on its own', () => {
    const d = domain();
    const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
    d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'a', taskType: 't' }, { id: 'b', taskType: 't' }] }));
    // As a restart loads them: parsed from JSON, each array its own.
    const loaded = stateFromDocs(new Map(JSON.parse(JSON.stringify(storedDocs(d.state)))), 2_000);
    const before = JSON.stringify(docRoot(loaded, workflowId));
    expect(before).toBe(JSON.stringify(docRoot(d.state, workflowId)));
    const orders = docRoot(loaded, workflowId)!.workOrders as Record<string, { dependents: string[]; declinedBy: string[] }>;
    // The cost that matters: one shared array, not one per field and order.
    expect(orders.a!.dependents).toBe(orders.b!.declinedBy);
    const tx = new Transaction(loaded);
    tx.append(workflowId, ['workOrders', 'a', 'dependents'], 'c');
    expect(orders.a!.dependents).toEqual(['c']);
    expect(orders.b!.dependents).toEqual([]);
    expect(orders.a!.declinedBy).toEqual([]);
    tx.rollback();
    expect(JSON.stringify(docRoot(loaded, workflowId))).toBe(before);
  });

  it('isolate undoes only what its change wrote when it throws: ops, versions, effects and runtime undos made before it stay', () => {
    const state = stateWithDoc();
    const tx = new Transaction<string>(state);
    let runtime = 0;
    tx.set('wf', ['status'], 'done');
    tx.effect('before');
    const failed = tx.isolate(() => {
      tx.set('wf', ['status'], 'broken');
      tx.append('wf', ['tags'], 'x');
      tx.putDoc('other', { fresh: true });
      tx.onUndo(() => runtime++);
      tx.effect('inside');
      // One that ran through inside one that fails is undone with it.
      expect(tx.isolate(() => tx.set('wf', ['note'], 'nested')).ok).toBe(true);
      throw new Error('bug');
    });
    expect(failed).toMatchObject({ ok: false, error: new Error('bug') });
    expect(docRoot(state, 'wf')).toMatchObject({ status: 'done', tags: ['a', 'b'] });
    expect(docRoot(state, 'wf')).not.toHaveProperty('note');
    expect(docRoot(state, 'other')).toBeUndefined();
    expect(state.versions.has('other')).toBe(false);
    expect(versionOf(state, 'wf')).toBe(4);
    expect([...tx.changes]).toEqual([['wf', [{ op: 'replace', path: '/status', value: 'done' }]]]);
    expect(tx.effects).toEqual(['before']);
    expect(runtime).toBe(1);

    // What ran through is kept, and the whole transaction still rolls back to before it.
    expect(tx.isolate(() => tx.set('wf', ['note'], 'kept'))).toEqual({ ok: true, value: undefined });
    expect(tx.changes.get('wf')).toHaveLength(2);
    tx.rollback();
    expect(docRoot(state, 'wf')).toEqual(docRoot(stateWithDoc(), 'wf'));
    expect(versionOf(state, 'wf')).toBe(3);
  });

  it('isolate restores a document dropped inside it, with its version and ops', () => {
    const state = stateWithDoc();
    const tx = new Transaction(state);
    tx.set('wf', ['status'], 'done');
    const original = docRoot(state, 'wf');
    tx.isolate(() => {
      tx.dropDoc('wf');
      throw new Error('bug');
    });
    expect(docRoot(state, 'wf')).toBe(original);
    expect(versionOf(state, 'wf')).toBe(4);
    expect(tx.changes.get('wf')).toEqual([{ op: 'replace', path: '/status', value: 'done' }]);
  });
});
