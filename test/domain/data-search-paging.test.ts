import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DataFilter, DataReferenceSpec } from '../../shared/schemas/data.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import { searchData } from '../../server/domain/data/data-search.ts';
import { EXAMINED_PER_PAGE } from '../../server/domain/machinery/read-bounds.ts';
import { domain } from '../helpers/domain.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';

type Domain = ReturnType<typeof domain>;
type Filter = Omit<z.input<typeof DataFilter>, 'workflowId' | 'cursor'>;

/** The id of the i-th reference: ids sort as their numbers do. */
const idOf = (i: number) => `d${String(i).padStart(6, '0')}`;

/**
 * A workflow of `count` CSV references registered 1000 at a time, a millisecond apart; those at
 * `rare` also carry the tag `rare`. Returns when each batch was registered.
 */
function inventory(count: number, rare: number[]) {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  const batches: number[] = [];
  for (let start = 0; start < count; start += 1000) {
    batches.push(d.state.workflows.get(workflowId)!.createdAt + batches.length);
    const items = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      items.push({ ...DataReferenceSpec.parse({ id: idOf(i), path: `/d/${idOf(i)}.csv`, size: i, tags: rare.includes(i) ? ['rare', 'all'] : ['all'] }), observed: null });
    }
    d.run('data.register', { workflowId, items });
    d.advance(1);
  }
  return { d, workflowId, batches };
}

/** Every page of a search, as ids with the page's total and whether a next page was offered. */
function pages(d: Domain, workflowId: string, filter: Filter) {
  const out: Array<{ ids: string[]; total: number; totalExact: boolean; more: boolean }> = [];
  let cursor: string | undefined;
  do {
    const page = searchData(d.state, DataFilter.parse({ ...filter, workflowId, ...(cursor ? { cursor } : {}) }));
    out.push({ ids: page.items.map((item) => item.id), total: page.total, totalExact: page.totalExact, more: page.nextCursor !== null });
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return out;
}

const E = EXAMINED_PER_PAGE;

describe('searching data a page at a time (domain)', () => {
  it('looks at no more than EXAMINED_PER_PAGE references for a page: short and empty pages keep going, and the index counts the total', () => {
    const rare = [5, 6, 7, 2 * E + 10];
    const { d, workflowId } = inventory(2 * E + 500, rare);
    expect(pages(d, workflowId, { tags: ['rare'], limit: 2 })).toEqual([
      { ids: [idOf(5), idOf(6)], total: 4, totalExact: true, more: true },
      { ids: [idOf(7)], total: 4, totalExact: true, more: true },
      { ids: [], total: 4, totalExact: true, more: true },
      { ids: [idOf(2 * E + 10)], total: 4, totalExact: true, more: false },
    ]);
    // Each match once, whatever the order.
    for (const [sort, order] of [['size', 'desc'], ['path', 'asc'], ['createdAt', 'desc']] as const) {
      const seen = pages(d, workflowId, { tags: ['rare'], sort, order, limit: 3 }).flatMap((page) => page.ids);
      expect([sort, order, seen]).toEqual([sort, order, order === 'desc' ? rare.map(idOf).reverse() : rare.map(idOf)]);
    }
  });

  it('gives a filter the index does not count a lower bound for its total, marked inexact, and gives each match once', () => {
    const rare = [5, 6, 7, 2 * E + 10];
    const { d, workflowId } = inventory(2 * E + 500, rare);
    const result = pages(d, workflowId, { tags: ['rare'], dataType: 'csv', limit: 2 });
    expect(result.flatMap((page) => page.ids)).toEqual(rare.map(idOf));
    // The first page saw three matches among the references it looked at; more may follow.
    expect(result[0]).toEqual({ ids: [idOf(5), idOf(6)], total: 3, totalExact: false, more: true });
    expect(result.every((page) => !page.totalExact)).toBe(true);
  });

  it('counts every match of a workflow small enough to look at whole, on every page', () => {
    const { d, workflowId } = inventory(E, [1, 2, 3, E - 1]);
    const result = pages(d, workflowId, { tags: ['rare'], text: 'd0', limit: 2 });
    expect(result.map((page) => [page.ids, page.total, page.totalExact])).toEqual([
      [[idOf(1), idOf(2)], 4, true],
      [[idOf(3), idOf(E - 1)], 4, true],
    ]);
  });

  it('starts a search by creation time at the start of its time range, and stops at its end', () => {
    const { d, workflowId, batches } = inventory(2 * E + 500, [5, 2 * E + 10]);
    const lastBatch = batches.at(-1)!;
    // The range holds the last 500 references only: one page finds the match, without a walk of those before.
    expect(pages(d, workflowId, { tags: ['rare'], dataType: 'csv', createdAfter: lastBatch })).toEqual([{ ids: [idOf(2 * E + 10)], total: 1, totalExact: true, more: false }]);
    expect(pages(d, workflowId, { tags: ['rare'], dataType: 'csv', createdBefore: batches[1], order: 'desc' })).toEqual([{ ids: [idOf(5)], total: 1, totalExact: true, more: false }]);
  });

  it('refuses a cursor that is not one, or is one of another sort, with VALIDATION', () => {
    const { d, workflowId } = inventory(10, []);
    const byPath = searchData(d.state, DataFilter.parse({ workflowId, sort: 'path', limit: 2 })).nextCursor!;
    expect(codeOf(() => searchData(d.state, DataFilter.parse({ workflowId, cursor: 'garbage' })))).toBe('VALIDATION');
    expect(codeOf(() => searchData(d.state, DataFilter.parse({ workflowId, sort: 'size', cursor: byPath })))).toBe('VALIDATION');
  });
});
