import { describe, expect, it } from 'vitest';
import { AGENTS_DOC, emptyState, holdsAtMost, putDoc, storedDocs } from '../../server/domain/state.ts';

describe('state size and stored documents (domain)', () => {
  const state = emptyState();
  // 1 + 3 values (a, list, its 2 items) + 2 values (nested, its x) = 6 in wf_1; 2 in the agent pool.
  putDoc(state, 'wf_1', { a: 1, list: [1, 2], nested: { x: 'y' } });
  state.versions.set('wf_1', 4);
  putDoc(state, AGENTS_DOC, { ag_1: { id: 'ag_1' } });
  state.versions.set(AGENTS_DOC, 2);

  it('counts every object entry and array element, and answers at the bound', () => {
    expect(holdsAtMost(state, 8)).toBe(true);
    expect(holdsAtMost(state, 7)).toBe(false);
    expect(holdsAtMost(emptyState(), 0)).toBe(true);
  });

  it('stops walking once past the bound, so asking about a huge document costs no more than the bound', () => {
    let visited = 0;
    const huge = emptyState();
    const big: Record<string, number> = {};
    for (let i = 0; i < 100_000; i++) big[`k${i}`] = i;
    const tail = new Proxy([], { get: (target, key) => (visited++, Reflect.get(target, key)) });
    putDoc(huge, 'wf_big', { orders: big, tail });
    expect(holdsAtMost(huge, 1_000)).toBe(false);
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
