import { describe, expect, it } from 'vitest';
import { emptyState, putDoc, type HubState } from '../../server/domain/machinery/state.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { Pins } from '../../server/domain/machinery/pins.ts';
import { random } from '../helpers/random.ts';

function documentWith(orders: number): Record<string, unknown> {
  const workOrders: Record<string, unknown> = {};
  for (let i = 0; i < orders; i++) workOrders[`wo_${i}`] = { id: `wo_${i}`, state: 'queued', progress: 0, history: [], input: { n: i } };
  return { id: 'wf', status: 'in_progress', progress: 0, stages: {}, tags: ['a'], workOrders, counts: { queued: orders }, note: null };
}

/** Reads a pin to the end, `items` at a time, running `between` after every piece. */
function readAll(state: HubState, doc: string, items: number, between: () => void): string {
  const pinned = state.pins.pin(doc, state.workflows.get(doc)!, 1);
  let text = '';
  for (let piece = pinned.read(items); piece !== undefined; piece = pinned.read(items)) {
    text += piece;
    between();
  }
  return text;
}

/** Rebuilds a pinned document from its units, running `between` after every one. */
function readUnits(state: HubState, doc: string, between: () => void): Record<string, unknown> {
  const pinned = state.pins.pin(doc, state.workflows.get(doc)!, 1);
  const rebuilt: Record<string, Record<string, unknown>> = {};
  for (let unit = pinned.readUnit(); unit !== undefined; unit = pinned.readUnit()) {
    if (unit.key === undefined) rebuilt[unit.field] = JSON.parse(unit.json);
    else rebuilt[unit.field]![unit.key] = JSON.parse(unit.json);
    between();
  }
  return rebuilt;
}

/** A function that makes one random write of any kind to document `wf`, each in its own transaction. */
function randomWrites(state: HubState, next: () => number): () => void {
  let created = 0;
  return () => {
    const tx = new Transaction(state);
    const doc = state.workflows.get('wf') as unknown as Record<string, Record<string, unknown>>;
    const ids = Object.keys(doc.workOrders!);
    const id = ids[Math.floor(next() * ids.length)];
    const choice = Math.floor(next() * 9);
    if (choice === 0 && id) tx.assign('wf', ['workOrders', id], { state: 'running', progress: Math.floor(next() * 100) });
    else if (choice === 1 && id) tx.set('wf', ['workOrders', id, 'progress'], 50);
    else if (choice === 2 && id) tx.remove('wf', ['workOrders', id]);
    else if (choice === 3) tx.set('wf', ['workOrders', `new_${created++}`], { id: 'new', state: 'pending', history: [] });
    else if (choice === 4 && id) tx.append('wf', ['workOrders', id, 'history'], { at: created });
    else if (choice === 5) tx.assign('wf', [], { status: 'completed', progress: Math.floor(next() * 100) });
    else if (choice === 6) tx.set('wf', ['stages', `s${created++}`], { p: 1 });
    else if (choice === 7) tx.append('wf', ['tags'], 'b');
    else tx.set('wf', ['counts'], { replaced: true });
  };
}

/** A state holding document `wf`, its JSON now, and a few random writes to run between reads. */
function changingDocument(seed: number) {
  const next = random(seed);
  const state = emptyState();
  putDoc(state, 'wf', documentWith(30));
  const expected = JSON.stringify(state.workflows.get('wf'));
  const write = randomWrites(state, next);
  const writeSome = () => {
    for (let n = Math.floor(next() * 3); n > 0; n--) write();
  };
  return { state, next, expected, writeSome };
}

describe('a pinned document', () => {
  it('reads as JSON.stringify of the document when nothing changes', () => {
    const state = emptyState();
    putDoc(state, 'wf', documentWith(50));
    const expected = JSON.stringify(state.workflows.get('wf'));
    expect(readAll(state, 'wf', 7, () => undefined)).toBe(expected);
    expect(state.pins.size).toBe(0);
  });

  it('reads the document as it was pinned while every kind of write changes it between pieces', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const { state, next, expected, writeSome } = changingDocument(seed);
      expect(readAll(state, 'wf', 1 + Math.floor(next() * 5), writeSome), `seed ${seed}`).toBe(expected);
    }
  });

  it('reads as units that rebuild the document as it was pinned, keys in order, while every kind of write changes it between units', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const { state, expected, writeSome } = changingDocument(seed);
      expect(JSON.stringify(readUnits(state, 'wf', writeSome)), `seed ${seed}`).toBe(expected);
      expect(state.pins.size).toBe(0);
    }
  });

  it('keeps the old document when the whole document is replaced or dropped meanwhile', () => {
    const state = emptyState();
    putDoc(state, 'wf', documentWith(5));
    const expected = JSON.stringify(state.workflows.get('wf'));
    let step = 0;
    const text = readAll(state, 'wf', 2, () => {
      const tx = new Transaction(state);
      if (step === 1) tx.putDoc('wf', { id: 'wf', other: true });
      if (step === 2) tx.set('wf', ['other'], false);
      if (step === 3) tx.dropDoc('wf');
      step++;
    });
    expect(text).toBe(expected);
  });

  it('is marked aborted and dropped when the writer rolls back', () => {
    const state = emptyState();
    putDoc(state, 'wf', documentWith(3));
    const pinned = state.pins.pin('wf', state.workflows.get('wf')!, 1);
    state.pins.abortAll('rolled back');
    expect(pinned.aborted).toBe('rolled back');
    expect(state.pins.size).toBe(0);
  });

  it('reads an object-valued field removed and set again since the pin as it was (an agent forgotten, then registered again)', () => {
    const root = { a1: { status: 'offline', load: 0 }, a2: { status: 'idle', load: 1 } };
    const before = JSON.stringify(root);
    const pins = new Pins();
    const pinned = pins.pin('@agents', root, 1);
    pins.beforeWrite('@agents', ['a1'], undefined, true);
    delete (root as Record<string, unknown>).a1;
    pins.beforeWrite('@agents', ['a1'], undefined, true);
    (root as Record<string, unknown>).a1 = { status: 'idle', load: 0 };
    let text = '';
    for (let piece = pinned.read(32); piece !== undefined; piece = pinned.read(32)) text += piece;
    expect(text).toBe(before);
  });
});
