/** Ended workflows to archive, shared by the tests of every archive. */

import type { Workflow } from '../../shared/schemas/workflow.ts';
import { emptyState, putDoc } from '../../server/domain/machinery/state.ts';
import { pinnedLines } from '../../server/pinned-json.ts';
import { headerOf, type WorkflowToArchive } from '../../server/store/archive.ts';
import { documentLine } from '../../server/store/archive-lines.ts';

/** A minimal ended workflow document. */
export function workflow(id: string, createdAt: number): Workflow {
  return {
    id,
    userQuery: `query ${id}`,
    outputFolder: `/tmp/${id}`,
    config: { enableAutoDocumentation: false, documentationInterval: 300, maxConcurrentAgents: null, enableDataValidation: true },
    status: 'completed',
    failureReason: null,
    createdAt,
    updatedAt: createdAt + 10,
    startedAt: createdAt + 1,
    endedAt: createdAt + 10,
    progress: 100,
    stages: {},
    steps: {},
    objectives: {},
    kpis: {},
    workOrders: {},
    workOrderCounts: { pending: 0, queued: 0, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
  } as unknown as Workflow;
}

/** A workflow on its way to the archive at version `v`, as the archiver hands it over: its lines serialised from a pinned state. */
export function toArchive(document: Workflow, v: number, archivedAt: number): WorkflowToArchive {
  const state = emptyState();
  putDoc(state, document.id, document);
  state.versions.set(document.id, v);
  return { header: headerOf(document, v, archivedAt), lines: pinnedLines(state, document.id, documentLine).chunks };
}

/**
 * An ended workflow of `orders` work orders, about 400 bytes each, with data and lineage: ids that
 * are array indexes among them (JSON puts those first) and text outside ASCII, so that its lines
 * cross the reader's buffers in the middle of a character.
 */
export function bigWorkflow(id: string, orders: number): Workflow {
  const document = workflow(id, 1000) as unknown as Record<string, Record<string, unknown>>;
  for (let n = 0; n < orders; n++) {
    const orderId = n % 100 === 7 ? String(n) : `o${n}`;
    document.workOrders![orderId] = { id: orderId, taskType: 'clean', state: 'completed', description: `ordre n° ${n} ✓ ${'é'.repeat(n % 97)}`, input: { n, nested: { list: [n, 'x'] } } };
  }
  document.workOrderCounts = { ...document.workOrderCounts, completed: orders };
  document.data = { raw: { id: 'raw', path: 's3://bucket/raw.csv' }, '42': { id: '42', path: 's3://bucket/42.csv' } };
  document.lineage = { t1: { id: 't1', inputs: ['raw'], outputs: ['42'] } };
  return document as unknown as Workflow;
}
