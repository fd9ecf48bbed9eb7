import { describe, expect, it } from 'vitest';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { emptyState, putDoc, type HubState } from '../../server/domain/machinery/state.ts';
import { compactOps } from '../../shared/patch.ts';
import { random } from '../helpers/random.ts';

/** A state with document `wf` holding items as a workflow holds its orders, at version 1. */
function stateWithItems(): HubState {
  const state = emptyState();
  const items: Record<string, unknown> = {};
  for (let i = 0; i < 4; i++) items[`i${i}`] = { state: 'pending', n: i, tags: ['a'], nested: { x: i } };
  putDoc(state, 'wf', { updatedAt: 0, counts: { pending: 4, queued: 0 }, items, list: [{ n: 0 }, { n: 1 }] });
  state.versions.set('wf', 1);
  return state;
}

/** A random write through `tx`, biased to the shapes commands make: fields of items, counts, new items, arrays. */
function randomWrite(tx: Transaction, state: HubState, next: () => number, step: number): void {
  const doc = state.workflows.get('wf') as unknown as { items: Record<string, { tags: string[] }>; list: unknown[] };
  const ids = Object.keys(doc.items);
  const id = ids[Math.floor(next() * ids.length)]!;
  const r = next();
  if (r < 0.25) tx.assign('wf', ['items', id], { state: `s${step % 3}`, n: step });
  else if (r < 0.35) tx.set('wf', ['items', id, 'nested', 'x'], step);
  else if (r < 0.45) tx.set('wf', ['counts', next() < 0.5 ? 'pending' : 'queued'], step);
  else if (r < 0.5) tx.set('wf', ['updatedAt'], step);
  else if (r < 0.6) tx.set('wf', ['items', `new${step}`], { state: 'pending', n: step, tags: [], nested: { x: 0 } });
  else if (r < 0.7) tx.append('wf', ['items', id, 'tags'], `t${step}`);
  else if (r < 0.75 && doc.items[id]!.tags.length > 0) tx.remove('wf', ['items', id, 'tags', 0]);
  else if (r < 0.8) tx.set('wf', ['items', id, 'nested'], { x: step });
  else if (r < 0.85 && ids.length > 1) tx.remove('wf', ['items', id]);
  else if (r < 0.9 && doc.list.length > 0) tx.set('wf', ['list', 0, 'n'], step);
  else if (r < 0.95) tx.append('wf', ['list'], { n: step });
  else tx.set('wf', ['items', id, 'waiting'], { reason: 'r', step });
}

/** A transaction that notes what may compact, as a bulk command's does. */
function tracking(state: HubState): Transaction {
  const tx = new Transaction(state);
  tx.trackCompaction();
  return tx;
}

describe('Transaction.mayCompact', () => {
  it('is false only where compactOps, folding too, would leave the ops as they are', () => {
    let plain = 0;
    let compactable = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const state = stateWithItems();
      const tx = tracking(state);
      const next = random(seed);
      const writes = 1 + Math.floor(next() * 12);
      for (let step = 0; step < writes; step++) randomWrite(tx, state, next, step);
      const ops = tx.changes.get('wf')!;
      if (tx.mayCompact('wf')) compactable++;
      else {
        plain++;
        expect(compactOps(ops, { fold: true }), `seed ${seed}`).toEqual(ops);
      }
    }
    // Both answers came up often enough for the check to mean something.
    expect(plain).toBeGreaterThan(30);
    expect(compactable).toBeGreaterThan(30);
  });

  it('is true for a field written twice, for a write below an item added in the same transaction, and after a whole document is put', () => {
    const twice = tracking(stateWithItems());
    twice.assign('wf', ['items', 'i0'], { state: 'queued' });
    twice.set('wf', ['items', 'i1', 'state'], 'queued');
    expect(twice.mayCompact('wf')).toBe(false);
    twice.set('wf', ['items', 'i0', 'state'], 'offered');
    expect(twice.mayCompact('wf')).toBe(true);

    const added = tracking(stateWithItems());
    added.set('wf', ['items', 'fresh'], { state: 'pending', tags: [] });
    expect(added.mayCompact('wf')).toBe(false);
    added.append('wf', ['items', 'fresh', 'tags'], 'x');
    expect(added.mayCompact('wf')).toBe(true);

    const put = tracking(stateWithItems());
    put.putDoc('other', { a: { b: 1 } });
    expect(put.mayCompact('other')).toBe(false);
    put.set('other', ['a', 'b'], 2);
    expect(put.mayCompact('other')).toBe(true);
  });

  it('tells a bulk change of distinct fields of many items apart from one that wrote a field again', () => {
    const state = stateWithItems();
    const tx = tracking(state);
    for (let i = 0; i < 200; i++) tx.set('wf', ['items', `n${i}`], { state: 'pending' });
    const bulk = tracking(state);
    for (let i = 0; i < 200; i++) bulk.assign('wf', ['items', `n${i}`], { state: 'queued', queuedAt: i });
    bulk.set('wf', ['updatedAt'], 5);
    expect(bulk.mayCompact('wf')).toBe(false);
    bulk.set('wf', ['items', 'n150', 'queuedAt'], 0);
    expect(bulk.mayCompact('wf')).toBe(true);
  });

  it('notes nothing unless told before the first write: an untracked transaction may always compact', () => {
    const untracked = new Transaction(stateWithItems());
    untracked.set('wf', ['items', 'i0', 'state'], 'queued');
    expect(untracked.mayCompact('wf')).toBe(true);
    const late = new Transaction(stateWithItems());
    late.set('wf', ['items', 'i0', 'state'], 'queued');
    // Told after a write it did not see: the notes would miss a repeat of it.
    late.trackCompaction();
    late.set('wf', ['items', 'i1', 'state'], 'queued');
    expect(late.mayCompact('wf')).toBe(true);
    const told = tracking(stateWithItems());
    told.set('wf', ['items', 'i0', 'state'], 'queued');
    expect(told.mayCompact('wf')).toBe(false);
  });
});
