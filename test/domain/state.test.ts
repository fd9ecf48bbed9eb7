import { describe, expect, it } from 'vitest';
import { AGENTS_DOC, emptyState, putDoc, smallerThan, storedDocs } from '../../server/domain/machinery/state.ts';

describe('state size and stored documents (domain)', () => {
  const state = emptyState();
  putDoc(state, 'wf_1', { a: 1, list: [1, 2], nested: { x: 'y' } });
  state.versions.set('wf_1', 4);
  putDoc(state, AGENTS_DOC, { ag_1: { id: 'ag_1' } });
  state.versions.set(AGENTS_DOC, 2);

  it('estimates the size of the documents’ JSON, strings by their length', () => {
    const length = JSON.stringify(storedDocs(state).map(([, stored]) => stored.doc)).length;
    const bound = [...Array(200).keys()].find((bytes) => smallerThan(state, bytes))!;
    expect(bound).toBeGreaterThanOrEqual(length * 0.8);
    expect(bound).toBeLessThanOrEqual(length * 1.5);
    const long = emptyState();
    putDoc(long, 'wf_2', { text: 'x'.repeat(10_000) });
    expect(smallerThan(long, 9_000)).toBe(false);
    expect(smallerThan(long, 11_000)).toBe(true);
    expect(smallerThan(emptyState(), 0)).toBe(true);
  });

  it('stops walking once past the bound, so asking about a huge document costs no more than the bound', () => {
    let visited = 0;
    const huge = emptyState();
    const big: Record<string, number> = {};
    for (let i = 0; i < 100_000; i++) big[`k${i}`] = i;
    const tail = new Proxy([], { get: (target, key) => (visited++, Reflect.get(target, key)) });
    putDoc(huge, 'wf_big', { orders: big, tail });
    expect(smallerThan(huge, 10_000)).toBe(false);
    // The walk gave up inside `orders`: it never reached the field after it.
    expect(visited).toBe(0);
  });

  it('lists every document with its version, the agent pool last', () => {
    expect(storedDocs(state)).toEqual([
      ['wf_1', { v: 4, doc: { a: 1, list: [1, 2], nested: { x: 'y' } } }],
      [AGENTS_DOC, { v: 2, doc: { ag_1: { id: 'ag_1' } } }],
    ]);
  });
});
