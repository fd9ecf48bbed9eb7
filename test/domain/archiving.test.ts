import { describe, expect, it } from 'vitest';
import { compareCreation, CreateWorkflowInput, ListWorkflowsInput, workflowHeader, type WorkflowHeader } from '../../shared/schemas/workflow.ts';
import { HeaderIndex, headerOf } from '../../server/store/archive.ts';
import { listWorkflows } from '../../server/domain/machinery/queries.ts';
import { random } from '../helpers/random.ts';
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

describe('listing live and archived workflows a page at a time (domain)', () => {
  it('lists every workflow once, in the order of the whole list, when the clock stepped back between creations', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const d = domain();
      const archived: WorkflowHeader[] = [];
      for (let i = 0; i < 12; i++) {
        // Now and then the clock steps back (NTP), by up to two seconds.
        d.advance(next() < 0.3 ? -Math.floor(next() * 2000) : Math.floor(next() * 1000));
        const id = `wf-${i}`;
        d.run('workflow.create', CreateWorkflowInput.parse({ id, userQuery: id }));
        if (next() < 0.4) {
          d.run('workflow.cancel', { workflowId: id });
          archived.push(workflowHeader(d.state.workflows.get(id)!));
          d.run('hub.evict', { workflowId: id, version: d.state.versions.get(id)! });
        }
      }
      archived.sort((x, y) => compareCreation(x.createdAt, x.id, y.createdAt, y.id));
      const archive = { headers: () => archived, header: (id: string) => archived.find((header) => header.id === id) };
      const list = (input: { limit: number; cursor?: string }) => listWorkflows(d.state, ListWorkflowsInput.parse(input), undefined, archive);
      const whole = list({ limit: 100 }).items.map((header) => header.id);
      expect(new Set(whole).size, `seed ${seed}`).toBe(12);
      for (const limit of [1, 2, 5]) {
        const paged: string[] = [];
        let cursor: string | undefined;
        do {
          const page = list(cursor === undefined ? { limit } : { limit, cursor });
          paged.push(...page.items.map((header) => header.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        expect(paged, `seed ${seed}, limit ${limit}`).toEqual(whole);
      }
    }
  });

  it('orders workflows created in one millisecond by id, and lists each once whatever is archived between pages', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const d = domain();
      const index = new HeaderIndex();
      const archive = { headers: () => index.all(), header: (id: string) => index.get(id) };
      const list = (input: { limit: number; cursor?: string }) => listWorkflows(d.state, ListWorkflowsInput.parse(input), undefined, archive);
      // A few milliseconds, each with several workflows whose ids are not in creation order.
      for (let i = 0; i < 12; i++) {
        if (next() < 0.3) d.advance(1);
        const id = `wf-${Math.floor(next() * 1e6)}-${i}`;
        d.run('workflow.create', CreateWorkflowInput.parse({ id, userQuery: id }));
        if (next() < 0.6) d.run('workflow.cancel', { workflowId: id });
      }
      const whole = list({ limit: 100 }).items;
      const expected = whole.map((header) => header.id);
      expect([...whole].sort((x, y) => compareCreation(x.createdAt, x.id, y.createdAt, y.id)).map((header) => header.id), `seed ${seed}`).toEqual(expected);
      const evictSome = () => {
        for (const workflow of [...d.state.workflows.values()]) {
          if (workflow.status !== 'cancelled' || next() < 0.7) continue;
          const v = d.state.versions.get(workflow.id)!;
          index.put(headerOf(workflow, v, 0));
          // Archived and not yet evicted now and then: listed from memory until the eviction.
          if (next() < 0.8) d.run('hub.evict', { workflowId: workflow.id, version: v });
        }
      };
      const paged: string[] = [];
      let cursor: string | undefined;
      do {
        const page = list(cursor === undefined ? { limit: 2 } : { limit: 2, cursor });
        paged.push(...page.items.map((header) => header.id));
        cursor = page.nextCursor ?? undefined;
        evictSome();
      } while (cursor !== undefined);
      expect(paged, `seed ${seed}`).toEqual(expected);
      expect(list({ limit: 100 }).items.map((header) => header.id), `seed ${seed}`).toEqual(expected);
    }
  });
});
