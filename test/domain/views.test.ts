import { describe, expect, it } from 'vitest';
import { DataReferenceSpec } from '../../shared/schemas/data.ts';
import { OrdersViewSpec, ViewSpec, viewName } from '../../shared/schemas/views.ts';
import { CreateWorkOrdersInput, WorkOrderState, type WorkOrder } from '../../shared/schemas/work-order.ts';
import { CreateWorkflowInput, type Workflow } from '../../shared/schemas/workflow.ts';
import { compareCatalogKeys, WorkflowCatalog, type CatalogKey } from '../../server/domain/work/workflow-catalog.ts';
import { ordersView, summaryView, workflowView } from '../../server/domain/workflows/views.ts';
import type { Effect } from '../../server/domain/machinery/effects.ts';
import type { Transaction } from '../../server/domain/machinery/transaction.ts';
import { domain } from '../helpers/domain.ts';
import { asAgent, create, randomWork, randomWorker, seeded, TASK_TYPES, undoableWorker } from '../helpers/random-work.ts';
import { codeOfCall as codeOf } from '../helpers/errors.ts';


/** A started workflow and a way to read it. */
function setup() {
  const d = domain();
  const workflowId = d.run('workflow.create', CreateWorkflowInput.parse({ id: 'wf', userQuery: 'q' })).reply.workflow.id;
  d.run('workflow.start', { workflowId });
  const workflow = () => d.state.workflows.get(workflowId)!;
  return { d, workflowId, workflow };
}

/** What a page must hold, by walking every order: sorted newest first, filtered, cut at `before`. */
function walked(workflow: Workflow, filter: { state?: WorkOrderState | undefined; taskType?: string | undefined }, limit: number, before?: CatalogKey) {
  const matching = Object.values(workflow.workOrders)
    .filter((o) => (filter.state === undefined || o.state === filter.state) && (filter.taskType === undefined || o.taskType === filter.taskType))
    .sort((a, b) => compareCatalogKeys(b, a));
  const older = before ? matching.filter((o) => compareCatalogKeys(o, before) < 0) : matching;
  return { total: matching.length, ids: older.slice(0, limit).map((o) => o.id) };
}

/** Every filter a view can have over these task types: none, a state, a task type, both. */
function filters() {
  const states = [undefined, ...WorkOrderState.options];
  return states.flatMap((state) => [undefined, ...TASK_TYPES, 'unknown-type'].map((taskType) => ({ state, taskType })));
}

/** Checks every filter, with and without a cursor, against a walk of all the orders. */
function expectPagesMatchWalk(catalog: WorkflowCatalog, workflow: Workflow): void {
  const cursors = [undefined, ...Object.values(workflow.workOrders).filter((_, i) => i % 7 === 3)];
  for (const filter of filters()) {
    for (const before of cursors) {
      for (const limit of [1, 5, 200]) expect(catalog.page(filter, limit, before), JSON.stringify({ filter, limit, before: before?.id })).toEqual(walked(workflow, filter, limit, before));
    }
  }
}

/** Expects a catalog to hold what one built at once from the workflow's document holds: counts, data and every page. */
function expectSameAsBuiltAtOnce(catalog: WorkflowCatalog, workflow: Workflow): void {
  const built = WorkflowCatalog.of(workflow);
  expect(catalog.countsByTaskType()).toEqual(built.countsByTaskType());
  expect(catalog.dataCount).toBe(built.dataCount);
  for (const filter of filters()) expect(catalog.page(filter, 200), JSON.stringify(filter)).toEqual(built.page(filter, 200));
}

describe('the work-order catalog (domain)', () => {
  it('lists orders newest first by (createdAt, id), ties in time broken by id, descending', () => {
    const { d, workflowId, workflow } = setup();
    create(d, workflowId, 'parse', ['b', 'a', 'c']);
    d.advance(5);
    create(d, workflowId, 'parse', ['aa']);
    const catalog = d.state.work.catalogs.of(workflow());
    expect(catalog.page({}, 10)).toEqual({ total: 4, ids: ['aa', 'c', 'b', 'a'] });
  });

  it('filters by state and by task type, counts every match as total, and stops at the limit', () => {
    const { d, workflowId, workflow } = setup();
    d.register('w', { taskTypes: ['parse'], maxConcurrentTasks: 1 });
    create(d, workflowId, 'parse', ['p1', 'p2', 'p3']);
    d.advance(1);
    create(d, workflowId, 'rank', ['r1', 'r2']);
    const catalog = d.state.work.catalogs.of(workflow());
    // One parse order is offered to the only agent; nobody takes rank.
    expect(catalog.page({ state: 'offered' }, 10).total).toBe(1);
    expect(catalog.page({ state: 'queued' }, 10)).toEqual({ total: 4, ids: ['r2', 'r1', ...['p3', 'p2', 'p1'].filter((id) => workflow().workOrders[id]!.state === 'queued')] });
    expect(catalog.page({ taskType: 'rank' }, 1)).toEqual({ total: 2, ids: ['r2'] });
    expect(catalog.page({ taskType: 'nothing' }, 10)).toEqual({ total: 0, ids: [] });
  });

  it('pages with a cursor: the pages of a filter, one after another, are the whole list once', () => {
    const { d, workflowId, workflow } = setup();
    randomWork(d, workflowId, 300);
    const catalog = d.state.work.catalogs.of(workflow());
    for (const filter of [{}, { state: 'completed' as const }, { taskType: 'rank' }]) {
      const seen: string[] = [];
      let before: WorkOrder | undefined;
      for (;;) {
        const page = catalog.page(filter, 7, before);
        seen.push(...page.ids);
        if (page.ids.length < 7) break;
        before = workflow().workOrders[page.ids.at(-1)!];
      }
      expect(seen).toEqual(walked(workflow(), filter, Infinity).ids);
    }
  });

  it('merges the sets of every task type and state into the same pages a walk of all orders gives', () => {
    const { d, workflowId, workflow } = setup();
    d.state.work.catalogs.of(workflow());
    randomWork(d, workflowId, 400);
    expect(Object.keys(workflow().workOrders).length).toBeGreaterThan(100);
    expectPagesMatchWalk(d.state.work.catalogs.of(workflow()), workflow());
  });

  it('kept up to date change by change, equals a catalog built from the document', () => {
    const { d, workflowId, workflow } = setup();
    // Built before any order, then kept: every creation and state change goes through it.
    const kept = d.state.work.catalogs.of(workflow());
    randomWork(d, workflowId, 400, seeded(99));
    expect(d.state.work.catalogs.of(workflow())).toBe(kept);
    const built = WorkflowCatalog.of(workflow());
    expect(kept.countsByTaskType()).toEqual(built.countsByTaskType());
    for (const filter of filters()) expect(kept.page(filter, 200)).toEqual(built.page(filter, 200));
  });

  it('undoes its changes with the command: a refused report and a rolled-back batch leave it as the document says', () => {
    const { d, workflowId, workflow } = setup();
    d.register('w');
    create(d, workflowId, 't', ['job', 'other']);
    d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: 'taken', path: 's3://b/x' }), observed: null }] });
    const catalog = d.state.work.catalogs.of(workflow());
    const attempt = workflow().workOrders.job!.attempt!;
    const ref = { workflowId, workOrderId: 'job', attemptToken: attempt.token };
    // The report accepts the offer (offered → running), then is refused: the command is undone.
    expect(codeOf(() => d.run('task.complete', { ...ref, outputs: [{ ...DataReferenceSpec.parse({ id: 'taken', path: 's3://b/y' }), observed: null }] }, asAgent('w')))).toBe('CONFLICT');
    expect(catalog.page({ state: 'offered' }, 10).ids).toContain('job');
    expect(catalog.page({ state: 'running' }, 10).total).toBe(0);
    // A command whose journal write fails is rolled back by its transaction, as the writer does.
    const { tx } = d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'late', taskType: 'u' }] }));
    d.run('workOrder.cancel', { workflowId, workOrderId: 'other' }).tx.rollback();
    tx.rollback();
    const data = d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: 'more', path: 's3://b/z' }), observed: null }] });
    expect(catalog.dataCount).toBe(2);
    data.tx.rollback();
    expect(catalog.dataCount).toBe(1);
    const built = WorkflowCatalog.of(workflow());
    expect(catalog.countsByTaskType()).toEqual(built.countsByTaskType());
    for (const filter of filters()) expect(catalog.page(filter, 200)).toEqual(built.page(filter, 200));
    expect(catalog.page({}, 10).ids).toEqual(['other', 'job']);
  });

  it('built a few orders at a time while orders are created, change state and some changes are undone, ends equal to one built at once from the document', () => {
    for (const seed of [3, 17, 42]) {
      const { d, workflowId, workflow } = setup();
      const random = seeded(seed);
      // An order nobody can take: orders created behind it wait, blocked.
      d.run('workOrder.createMany', CreateWorkOrdersInput.parse({ workflowId, orders: [{ id: 'hold', taskType: 'manual', requirements: ['human'] }] }));
      const work = randomWorker(d, workflowId, random);
      const undoable = undoableWorker(d, workflowId, random);
      for (let i = 0; i < 150; i++) work();
      for (let i = 0; i < 10; i++) undoable();
      const catalog = d.state.work.catalogs.building(workflow());
      // As the build begins: data references registered between its first steps, then undone.
      const registered = Array.from({ length: 4 }, (_, i) => {
        const { tx } = d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: `early${i}`, path: 's3://b/e' }), observed: null }] });
        catalog.buildStep(1);
        return tx;
      });
      for (const tx of registered.slice(1).reverse()) tx.rollback();
      const step = () => random() < 0.5 && catalog.buildStep(1 + Math.floor(random() * 3));
      let undone = 0;
      while (!catalog.built) {
        if (random() < 0.4) {
          // Work that is kept, between steps of the build.
          for (let i = 0; i < 5; i++, step()) work();
          continue;
        }
        // Changes that are kept or undone (newest first, as a rollback does), with steps of the build between.
        const done: Array<Transaction<Effect>> = [];
        for (let i = 0; i < 1 + random() * 5; i++, step()) done.push(undoable());
        if (random() < 0.5) continue;
        for (const tx of done.reverse()) {
          tx.rollback();
          undone++;
          step();
        }
      }
      expect(undone).toBeGreaterThan(10);
      expect(d.state.work.catalogs.of(workflow())).toBe(catalog);
      expectSameAsBuiltAtOnce(catalog, workflow());
      // Kept up to date once built, undos included.
      for (let i = 0; i < 50; i++) work();
      for (let i = 0; i < 10; i++) undoable().rollback();
      expectSameAsBuiltAtOnce(catalog, workflow());
      expectPagesMatchWalk(catalog, workflow());
    }
  });

  it('being built, is dropped by a rebuild of the index, and started again from the document when next asked for', () => {
    const { d, workflowId, workflow } = setup();
    randomWork(d, workflowId, 100);
    const first = d.state.work.catalogs.building(workflow());
    first.buildStep(10);
    first.buildStep(10);
    d.state.work.rebuild(d.state.workflows.values(), d.state.agents, 0);
    expect(d.state.work.catalogs.holds(first)).toBe(false);
    const second = d.state.work.catalogs.building(workflow());
    expect(second).not.toBe(first);
    expect(second.built).toBe(false);
    expectSameAsBuiltAtOnce(d.state.work.catalogs.of(workflow()), workflow());
    expect(d.state.work.catalogs.holds(second)).toBe(true);
  });

  it('is dropped with its workflow and by a rebuild, and built again from the document when next asked for', () => {
    const { d, workflowId, workflow } = setup();
    create(d, workflowId, 't', ['a']);
    const first = d.state.work.catalogs.of(workflow());
    d.state.work.rebuild(d.state.workflows.values(), d.state.agents, 0);
    const second = d.state.work.catalogs.of(workflow());
    expect(second).not.toBe(first);
    expect(second.page({}, 5).ids).toEqual(['a']);
    d.state.work.forgetWorkflow(workflowId);
    expect(d.state.work.catalogs.of(workflow())).not.toBe(second);
  });
});

describe('views of a workflow (domain)', () => {
  it('summarises a workflow without its orders: counts by state and by task type × state, agents, data', () => {
    const { d, workflowId, workflow } = setup();
    d.register('w', { taskTypes: ['parse'], maxConcurrentTasks: 1 });
    create(d, workflowId, 'parse', ['p1', 'p2']);
    create(d, workflowId, 'rank', ['r1']);
    d.run('workOrder.cancel', { workflowId, workOrderId: 'r1' });
    d.run('data.register', { workflowId, items: [{ ...DataReferenceSpec.parse({ id: 'raw', path: 's3://b/raw' }), observed: null }] });
    d.run('kpi.add', { workflowId, id: 'acc', name: 'accuracy', target: 0.9, description: '', unit: '', direction: 'higher' });
    d.run('kpi.record', { workflowId, kpiId: 'acc', value: 0.5 });
    d.run('workflow.progress', { workflowId, stage: 'load', percentage: 40 });
    d.run('step.add', { workflowId, name: 'fetch', description: '', start: true });
    const view = summaryView(workflow(), d.state.work.catalogs.of(workflow()));
    expect(view).toMatchObject({ id: workflowId, status: 'in_progress', progress: 40, agentCount: 1, dataCount: 1 });
    expect(view.workOrderCounts).toMatchObject({ offered: 1, queued: 1, cancelled: 1, completed: 0 });
    expect(view.workOrderCountsByTaskType).toEqual({
      parse: { pending: 0, blocked: 0, queued: 1, offered: 1, running: 0, completed: 0, failed: 0, cancelled: 0 },
      rank: { pending: 0, blocked: 0, queued: 0, offered: 0, running: 0, completed: 0, failed: 0, cancelled: 1 },
    });
    expect(view.kpis.acc!.history.map((s) => s.value)).toEqual([0.5]);
    expect(view.stages.load!.progress).toBe(40);
    expect(view.steps).toMatchObject({ total: 1, running: 1 });
    expect(JSON.stringify(view)).not.toContain('p1');
  });

  it('holds the page of matching orders, whole, with their order and the total', () => {
    const { d, workflowId, workflow } = setup();
    randomWork(d, workflowId, 200);
    const catalog = d.state.work.catalogs.of(workflow());
    const spec = OrdersViewSpec.parse({ kind: 'orders', state: 'completed', limit: 3 });
    const view = ordersView(workflow(), catalog, spec);
    const expected = walked(workflow(), { state: 'completed' }, 3);
    expect(view.total).toBe(expected.total);
    expect(view.ids).toEqual(expected.ids);
    expect(view.orders).toEqual(Object.fromEntries(expected.ids.map((id) => [id, workflow().workOrders[id]])));
  });

  it('refuses a cursor that names no order of the workflow, and a workflow it does not hold', () => {
    const { d, workflowId } = setup();
    create(d, workflowId, 't', ['a']);
    expect(codeOf(() => workflowView(d.state, workflowId, ViewSpec.parse({ kind: 'orders', before: 'nope' })))).toBe('VALIDATION');
    expect(codeOf(() => workflowView(d.state, 'missing', ViewSpec.parse({ kind: 'summary' })))).toBe('NOT_FOUND');
    expect(workflowView(d.state, workflowId, ViewSpec.parse({ kind: 'orders', before: 'a' }))).toEqual({ total: 1, ids: [], orders: {} });
  });

  it('names a view canonically: fixed parameter order, defaults left out, values encoded', () => {
    expect(viewName('wf', { kind: 'summary' })).toBe('wf/summary');
    expect(viewName('wf', ViewSpec.parse({ kind: 'orders' }))).toBe('wf/orders');
    expect(viewName('wf', { kind: 'orders', limit: 50, before: 'o:1', taskType: 'a b&c', state: 'failed' })).toBe('wf/orders?state=failed&taskType=a%20b%26c&before=o%3A1');
    expect(viewName('wf', { kind: 'orders', limit: 10 })).toBe('wf/orders?limit=10');
  });
});
