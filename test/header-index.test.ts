import { describe, expect, it } from 'vitest';
import { HeaderIndex, type ArchivedHeader } from '../server/store/archive.ts';

function header(id: string, status: string, workOrderCounts: Record<string, unknown>): ArchivedHeader {
  return { id, userQuery: id, status, progress: 100, createdAt: 1, updatedAt: 1, startedAt: 1, endedAt: 1, workOrderCounts, unservable: 0, v: 1, archivedAt: 1 } as ArchivedHeader;
}

const tallyOf = (index: HeaderIndex) => ({ workflows: Object.fromEntries(index.tally.workflows), orders: Object.fromEntries(index.tally.orders) });

describe('the archive header index tally (what /metrics counts of archived workflows)', () => {
  it('follows headers put, replaced, removed and deleted, counting each once', () => {
    const index = new HeaderIndex();
    index.put(header('a', 'completed', { completed: 3, failed: 1 }));
    index.put(header('b', 'failed', { failed: 2 }));
    index.put(header('c', 'cancelled', { cancelled: 5 }));
    expect(tallyOf(index)).toEqual({ workflows: { completed: 1, failed: 1, cancelled: 1 }, orders: { completed: 3, failed: 3, cancelled: 5 } });

    // The same id again (archived anew) replaces its counts.
    index.put(header('a', 'cancelled', { cancelled: 1 }));
    expect(tallyOf(index)).toEqual({ workflows: { completed: 0, failed: 1, cancelled: 2 }, orders: { completed: 0, failed: 2, cancelled: 6 } });

    index.remove('b');
    index.remove('b');
    // An id named twice, and one not there, take nothing more off.
    index.delete(['c', 'c', 'nope']);
    expect(tallyOf(index)).toEqual({ workflows: { completed: 0, failed: 0, cancelled: 1 }, orders: { completed: 0, failed: 0, cancelled: 1 } });
    expect(index.size).toBe(1);
  });

  it('adds only whole counts from a damaged header', () => {
    const index = new HeaderIndex();
    index.put(header('d', 'completed', { completed: 'many', failed: 1.5, cancelled: 2 }));
    index.remove('d');
    index.put(header('e', 'completed', { completed: 4 }));
    expect(tallyOf(index)).toEqual({ workflows: { completed: 1 }, orders: { cancelled: 0, completed: 4 } });
  });
});
