import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DataReferenceSpec, UpdateDataInput, type DataReference } from '../../shared/schemas/data.ts';
import { CreateWorkflowInput } from '../../shared/schemas/workflow.ts';
import type { Observation, PreparedSpec } from '../../server/domain/data/inventory.ts';
import { ReferenceIndex, type CountedField, type SortOrder } from '../../server/domain/data/reference-index.ts';
import { applyCommand, type CommandInput, type CommandType } from '../../server/domain/machinery/commands.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import { stateFromDocs, storedDocs } from '../../server/domain/machinery/state.ts';
import { Transaction } from '../../server/domain/machinery/transaction.ts';
import { ADMIN, SETTINGS, domain } from '../helpers/domain.ts';

type Domain = ReturnType<typeof domain>;
const HASH_A = 'a'.repeat(64);

function setup() {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ userQuery: 'q' })).reply.workflow.id;
  return { d, workflowId, workflow: () => d.state.workflows.get(workflowId)! };
}

function spec(fields: z.input<typeof DataReferenceSpec>, observed: Observation | null = null): PreparedSpec {
  return { ...DataReferenceSpec.parse(fields), observed };
}

const update = (workflowId: string, dataId: string, fields: Omit<z.input<typeof UpdateDataInput>, 'workflowId' | 'dataId'>) => ({
  ...UpdateDataInput.parse({ workflowId, dataId, ...fields }),
  observed: null,
});

/** Everything the index answers: each order both ways, and the count of every value the references carry. */
function view(index: ReferenceIndex, refs: readonly DataReference[]) {
  const orders: Record<string, string[]> = {};
  for (const sort of ['createdAt', 'path', 'size'] as SortOrder[]) {
    for (const descending of [false, true]) orders[`${sort} ${descending ? 'desc' : 'asc'}`] = [...index.places(sort, descending)].map(([place]) => place[1]);
  }
  const counts: Record<string, number> = {};
  for (const ref of refs) {
    const { agentId, workOrderId, source } = ref.provenance;
    const values: Array<[CountedField, string | null]> = [['status', ref.status], ['dataType', ref.dataType], ['source', source], ['agentId', agentId], ['workOrderId', workOrderId]];
    for (const tag of ref.tags) values.push(['tag', tag]);
    for (const [field, value] of values) if (value !== null) counts[`${field}=${value}`] = index.count(field, value);
  }
  return { size: index.size, orders, counts };
}

/** The view of the index the hub keeps, and of one built now from the documents. */
function kept(d: Domain, workflowId: string) {
  const workflow = d.state.workflows.get(workflowId)!;
  const refs = Object.values(workflow.data);
  return { kept: view(d.state.inventory.references(workflow), refs), rebuilt: view(new ReferenceIndex(refs), refs) };
}

describe('the index of data references (domain)', () => {
  it('kept up to date as references are registered, updated and validated, equals one built from the documents', () => {
    const { d, workflowId, workflow } = setup();
    d.run('data.register', { workflowId, items: [spec({ id: 'b', path: '/d/b.csv', size: 5, tags: ['raw'] }), spec({ id: 'a', path: 's3://x/a.json', tags: ['raw', 'eu'] })] });
    const index = d.state.inventory.references(workflow());
    d.advance(10);
    d.run('data.register', {
      workflowId,
      items: [spec({ id: 'c', path: '/d/c.csv', derivedFrom: ['a'] }, { exists: true, size: 7, checksum: HASH_A }), spec({ id: 'd', path: '/d/d.csv' }, { exists: false, size: null, checksum: null })],
    });
    d.advance(10);
    // A new path, size, type and tags: it moves in the path and size orders and in the counts.
    d.run('data.update', update(workflowId, 'b', { path: '/a/first.parquet', size: 1, dataType: 'parquet', tags: ['clean'] }), ADMIN);
    d.run('data.validate', { workflowId, dataId: 'd', version: 1, observed: { exists: true, size: 3, checksum: HASH_A } });
    const { kept: view, rebuilt } = kept(d, workflowId);
    expect(view).toEqual(rebuilt);
    expect(view.orders['path asc']).toEqual(['b', 'c', 'd', 'a']);
    expect(view.orders['size desc']).toEqual(['c', 'd', 'b', 'a']);
    expect(view.counts).toMatchObject({ 'tag=raw': 1, 'tag=clean': 1, 'status=valid': 2, 'dataType=parquet': 1, 'source=derived': 1 });
    // Changed in place, never built again.
    expect(d.state.inventory.references(workflow())).toBe(index);
  });

  it('puts back what a rolled-back batch changed, as the hub undoes a batch whose journal write failed', () => {
    const { d, workflowId, workflow } = setup();
    d.run('data.register', { workflowId, items: [spec({ id: 'a', path: '/d/a.csv', size: 2, tags: ['raw'] }), spec({ id: 'b', path: '/d/b.csv', size: 9 })] });
    const index = d.state.inventory.references(workflow());
    const before = kept(d, workflowId).kept;
    const batch: Array<Transaction<Effect>> = [];
    const apply = <K extends CommandType>(type: K, input: CommandInput<K>) => {
      const tx = new Transaction<Effect>(d.state);
      applyCommand({ state: d.state, tx, ctx: { now: 5_000, monotonicNow: 5_000, newId: (prefix) => `${prefix}_x`, settings: SETTINGS } }, { type, input, actor: ADMIN });
      batch.push(tx);
    };
    apply('data.register', { workflowId, items: [spec({ id: 'c', path: '/a/c.csv', tags: ['raw', 'new'] })] });
    apply('data.update', update(workflowId, 'a', { path: '/z/a.csv', size: 100, tags: ['moved'] }));
    apply('data.update', update(workflowId, 'a', { size: 50 }));
    expect(kept(d, workflowId).kept.orders['path asc']).toEqual(['c', 'b', 'a']);
    for (const tx of batch.reverse()) tx.rollback();
    expect(kept(d, workflowId)).toEqual({ kept: before, rebuilt: before });
    expect(d.state.inventory.references(workflow())).toBe(index);
  });

  it('is built from the documents at start-up, the same as the one kept while they were written', () => {
    const { d, workflowId } = setup();
    d.run('data.register', { workflowId, items: [spec({ id: 'a', path: '/d/a.csv', size: 3, tags: ['raw'] }), spec({ id: 'b', path: '/d/b.csv' })] });
    d.run('data.update', update(workflowId, 'b', { path: '/c/b.csv', size: 1 }), ADMIN);
    const restarted = stateFromDocs(new Map(storedDocs(d.state)), 9_000);
    const workflow = restarted.workflows.get(workflowId)!;
    expect(view(restarted.inventory.references(workflow), Object.values(workflow.data))).toEqual(kept(d, workflowId).kept);
  });
});
