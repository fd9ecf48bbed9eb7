import { describe, expect, it } from 'vitest';
import { ALL_ITEMS, ChangedItems } from '../../server/domain/machinery/changed-items.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { emptyState, putDoc } from '../../server/domain/machinery/state.ts';

/** A state holding `wf` (work orders o1, o2, counts) with its first take done, and a transaction on it. */
function tracked() {
  const state = emptyState();
  putDoc(state, 'wf', { status: 'running', workOrders: { o1: { state: 'queued', history: [] }, o2: { state: 'queued', history: [] } }, counts: { queued: 2 } });
  state.changed.track();
  state.changed.take();
  return { state, tx: new Transaction(state) };
}

describe('ChangedItems', () => {
  it('notes nothing until told to track, and knows nothing before its first take: every document counts as changed whole', () => {
    const changed = new ChangedItems();
    changed.note('wf', ['workOrders', 'o1'], undefined);
    expect(changed.take()).toEqual({ docs: new Map(), unknown: true });
    changed.track();
    changed.note('wf', ['workOrders', 'o1'], undefined);
    expect(changed.take().unknown).toBe(true);
    expect(changed.take()).toEqual({ docs: new Map(), unknown: false });
  });

  it('notes the items of each top-level field that the transaction writes, however deep, and starts afresh at each take', () => {
    const { state, tx } = tracked();
    tx.set('wf', ['workOrders', 'o1', 'state'], 'running');
    tx.append('wf', ['workOrders', 'o1', 'history'], { outcome: 'completed' });
    tx.assign('wf', ['counts'], { queued: 1, running: 1 });
    tx.set('wf', ['workOrders', 'o3'], { state: 'queued', history: [] });
    tx.set('wf', ['status'], 'paused');
    expect(state.changed.take().docs).toEqual(
      new Map([['wf', new Map<string, unknown>([['workOrders', new Set(['o1', 'o3'])], ['counts', new Set(['queued', 'running'])], ['status', ALL_ITEMS]])]]),
    );
    expect(state.changed.take().docs.size).toBe(0);
    // The item noted last, written again after a take, is noted again.
    tx.set('wf', ['workOrders', 'o3', 'state'], 'running');
    expect(state.changed.take().docs).toEqual(new Map([['wf', new Map([['workOrders', new Set(['o3'])]])]]));
  });

  it('takes a field replaced or removed as changed whole, and a document replaced, removed or marked as changed whole', () => {
    const { state, tx } = tracked();
    tx.set('wf', ['workOrders', 'o1', 'state'], 'running');
    tx.set('wf', ['workOrders'], {});
    tx.set('wf', ['workOrders', 'o2'], { state: 'queued' });
    tx.remove('wf', ['counts']);
    expect(state.changed.take().docs.get('wf')).toEqual(new Map([['workOrders', ALL_ITEMS], ['counts', ALL_ITEMS]]));

    tx.set('wf', ['workOrders', 'o2', 'state'], 'running');
    tx.putDoc('wf', { status: 'new' });
    tx.set('wf', ['status'], 'again');
    tx.putDoc('other', { status: 'created' });
    state.changed.markWhole('third');
    expect(state.changed.take().docs).toEqual(new Map([['wf', ALL_ITEMS], ['other', ALL_ITEMS], ['third', ALL_ITEMS]]));

    tx.dropDoc('wf');
    expect(state.changed.take().docs).toEqual(new Map([['wf', ALL_ITEMS]]));
  });
});
