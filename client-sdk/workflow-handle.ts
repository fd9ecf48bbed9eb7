import type { EventName, ReplyOf, RequestOf } from '../shared/contract.ts';
import type { DataReference } from '../shared/schemas/data.ts';
import type { Report } from '../shared/schemas/report.ts';
import type { WorkflowSummary } from '../shared/schemas/summary.ts';
import type { WorkOrder } from '../shared/schemas/work-order.ts';
import type { Workflow } from '../shared/schemas/workflow.ts';
import type { Connection, RequestOptions } from './connection.ts';
import { inlineOrTransfer, readWhole, withBody } from './transfers.ts';
import { pages } from './paging.ts';

/** How far a lineage walk goes: `maxDepth` levels (any depth without), at most `limit` nodes and edges. */
export type Walk = Pick<Request<'lineage.upstream'>, 'maxDepth' | 'limit'>;

/** A walk's fields from the number (maxDepth) or object `upstream` and `downstream` take. */
function walk(depth: number | Walk | undefined): Walk {
  if (depth === undefined) return {};
  return typeof depth === 'number' ? { maxDepth: depth } : depth;
}

/** T without the keys K, for each member of a union. */
export type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Event = EventName<'control'>;
type Request<E extends Event> = RequestOf<'control', E>;
type Reply<E extends Event> = ReplyOf<'control', E>;

/**
 * One workflow, as the Python package's WorkflowManager and WorkflowUpdater: lifecycle, steps,
 * objectives, KPIs and stage progress; its work orders and data are in the methods below. Every
 * method takes `{ signal, timeoutMs }` last. `version` is the workflow version of the last reply.
 */
export class WorkflowHandle {
  /** The newest workflow version a reply through this handle carried: of a change made through it, or of a read. */
  version = 0;

  constructor(
    private readonly connection: Connection<'control'>,
    readonly id: string,
  ) {}

  /** Sends a request about this workflow and keeps the version its reply carries. */
  private async send<E extends Event>(event: E, payload: Without<Request<E>, 'workflowId'>, options: RequestOptions | undefined): Promise<Reply<E>> {
    const reply = await this.connection.request(event, { ...payload, workflowId: this.id } as Request<E>, options);
    const version = (reply as { version?: unknown }).version;
    if (typeof version === 'number') this.version = Math.max(this.version, version);
    return reply;
  }

  /** The whole state of the workflow. */
  get(options?: RequestOptions): Promise<Workflow> {
    return readWhole(
      () => this.send('workflow.get', {}, options),
      (reply) => inlineOrTransfer(this.connection, reply.workflow, reply.transfer, options),
    );
  }

  /** Status, durations, counts, progress, objectives and KPIs (get_workflow_summary). */
  summary(options?: RequestOptions): Promise<WorkflowSummary> {
    return this.send('workflow.summary', {}, options);
  }

  /** pending → in_progress. */
  start(options?: RequestOptions): Promise<Reply<'workflow.start'>> {
    return this.send('workflow.start', {}, options);
  }

  /** in_progress → completed. */
  complete(options?: RequestOptions): Promise<Reply<'workflow.complete'>> {
    return this.send('workflow.complete', {}, options);
  }

  /** pending | in_progress → failed, with the reason. */
  fail(reason: string, options?: RequestOptions): Promise<Reply<'workflow.fail'>> {
    return this.send('workflow.fail', { reason }, options);
  }

  /** pending | in_progress → cancelled. */
  cancel(reason?: string, options?: RequestOptions): Promise<Reply<'workflow.cancel'>> {
    return this.send('workflow.cancel', reason === undefined ? {} : { reason }, options);
  }

  /**
   * Stops offering this workflow's work orders until resume(): attempts out go on, orders still queue; pausing again changes nothing.
   * @example await wf.pause('enrichment API over budget');
   */
  pause(reason?: string, options?: RequestOptions): Promise<Reply<'workflow.pause'>> {
    return this.send('workflow.pause', reason === undefined ? {} : { reason }, options);
  }

  /** Offers a paused workflow's queued work orders again, at once; resuming one not paused changes nothing. */
  resume(options?: RequestOptions): Promise<Reply<'workflow.resume'>> {
    return this.send('workflow.resume', {}, options);
  }

  /** Sets a stage's progress, 0..100 (update_progress). */
  async updateProgress(stage: string, percentage: number, options?: RequestOptions): Promise<Reply<'workflow.progress'>['item']> {
    return (await this.send('workflow.progress', { stage, percentage }, options)).item;
  }

  /** Adds an execution step; `start: true` starts it at once. */
  async addStep(step: Without<Request<'step.add'>, 'workflowId'>, options?: RequestOptions): Promise<Reply<'step.add'>['item']> {
    return (await this.send('step.add', step, options)).item;
  }

  /** pending → running. */
  async startStep(stepId: string, options?: RequestOptions): Promise<Reply<'step.start'>['item']> {
    return (await this.send('step.start', { stepId }, options)).item;
  }

  /** running → completed, with an optional result. */
  async completeStep(stepId: string, result?: unknown, options?: RequestOptions): Promise<Reply<'step.complete'>['item']> {
    return (await this.send('step.complete', result === undefined ? { stepId } : { stepId, result }, options)).item;
  }

  /** pending | running → failed, with the error. */
  async failStep(stepId: string, error: string, options?: RequestOptions): Promise<Reply<'step.fail'>['item']> {
    return (await this.send('step.fail', { stepId, error }, options)).item;
  }

  /** Adds an objective (add_objective). */
  async addObjective(objective: Without<Request<'objective.add'>, 'workflowId'>, options?: RequestOptions): Promise<Reply<'objective.add'>['item']> {
    return (await this.send('objective.add', objective, options)).item;
  }

  /** Changes an objective's status, progress or fields. */
  async updateObjective(
    objectiveId: string,
    changes: Without<Request<'objective.update'>, 'workflowId' | 'objectiveId'>,
    options?: RequestOptions,
  ): Promise<Reply<'objective.update'>['item']> {
    return (await this.send('objective.update', { ...changes, objectiveId }, options)).item;
  }

  /** Adds a KPI with a numeric target (add_kpi). */
  async addKpi(kpi: Without<Request<'kpi.add'>, 'workflowId'>, options?: RequestOptions): Promise<Reply<'kpi.add'>['item']> {
    return (await this.send('kpi.add', kpi, options)).item;
  }

  /** Records a KPI value; the history is kept and `met` re-evaluated. */
  async recordKpi(kpiId: string, value: number, options?: RequestOptions): Promise<Reply<'kpi.record'>['item']> {
    return (await this.send('kpi.record', { kpiId, value }, options)).item;
  }

  /** A report of the workflow as it is now (json, markdown or html), with its version and content hash. */
  async report(format: Request<'workflow.report'>['format'] = 'markdown', options?: RequestOptions): Promise<Report> {
    return readWhole(
      () => this.connection.request('workflow.report', { workflowId: this.id, format }, options),
      (reply) => withBody(this.connection, reply, options),
    );
  }

  /** Writes report.json, report.md and report.html to the workflow's outputFolder (generate_all_reports). */
  generateReports(options?: RequestOptions): Promise<Reply<'workflow.generateReports'>> {
    return this.connection.request('workflow.generateReports', { workflowId: this.id }, options);
  }

  /**
   * Creates a work order; the hub offers it to the best agent as soon as it is ready. Given its
   * `id`, the create is sent again after a failure that may not have taken effect (a failover).
   */
  async createWorkOrder(order: Without<Request<'workOrder.create'>, 'workflowId'>, options: RequestOptions = {}): Promise<WorkOrder> {
    const id = order.id;
    if (!id) return (await this.send('workOrder.create', order, options)).item;
    const reply = await this.connection.createOnce(`order ${this.id} ${id}`, 'workOrder.create', { ...order, workflowId: this.id }, options, () =>
      this.connection.request('workOrder.get', { workflowId: this.id, workOrderId: id }, options),
    );
    this.version = Math.max(this.version, reply.version);
    return reply.item;
  }

  /** Creates up to 1000 work orders at once, all or none; they may depend on each other by id (so every one has an id, and a failover's retry is safe). */
  async createWorkOrders(orders: Request<'workOrder.createMany'>['orders'], options: RequestOptions = {}): Promise<WorkOrder[]> {
    const ids = orders.map((order) => order.id);
    if (ids.some((id) => !id)) return (await this.send('workOrder.createMany', { orders }, options)).items;
    const reply = await this.connection.createOnce(`orders ${this.id} ${ids.join(' ')}`, 'workOrder.createMany', { orders, workflowId: this.id }, options, async () => {
      const items = await Promise.all(ids.map((workOrderId) => this.connection.request('workOrder.get', { workflowId: this.id, workOrderId: workOrderId! }, options)));
      return { items: items.map((reply) => reply.item), version: Math.max(...items.map((reply) => reply.version)) } as Reply<'workOrder.createMany'>;
    });
    const version = (reply as { version?: unknown }).version;
    if (typeof version === 'number') this.version = Math.max(this.version, version);
    return reply.items;
  }

  /** One work order. */
  async getWorkOrder(workOrderId: string, options?: RequestOptions): Promise<WorkOrder> {
    return (await this.send('workOrder.get', { workOrderId }, options)).item;
  }

  /**
   * Every work order in creation order, optionally by state, fetched a page (`limit`) at a time.
   * @example for await (const order of wf.workOrders({ state: 'failed' })) console.log(order.id, order.error);
   */
  workOrders(filter: Without<Request<'workOrder.list'>, 'workflowId' | 'cursor'> = {}, options?: RequestOptions): AsyncGenerator<WorkOrder, void, undefined> {
    return pages((cursor) => this.listWorkOrders(cursor === undefined ? filter : { ...filter, cursor }, options));
  }

  /** One page of work orders in creation order, optionally by state; `nextCursor` asks for the next. */
  listWorkOrders(filter: Without<Request<'workOrder.list'>, 'workflowId'> = {}, options?: RequestOptions): Promise<Reply<'workOrder.list'>> {
    return this.connection.request('workOrder.list', { ...filter, workflowId: this.id }, options);
  }

  /** Cancels a work order; an agent running it is told to stop (its ctx.signal aborts). */
  async cancelWorkOrder(workOrderId: string, reason?: string, options?: RequestOptions): Promise<WorkOrder> {
    return (await this.send('workOrder.cancel', reason === undefined ? { workOrderId } : { workOrderId, reason }, options)).item;
  }

  /**
   * Puts a failed work order back in the queue with a fresh budget of attempts (its history kept),
   * or offers a queued one again to the agents that declined it; dependents are retried one by one.
   * @example await wf.retryWorkOrder('render-7'); // failed for good, or declined by the one GPU agent
   */
  async retryWorkOrder(workOrderId: string, options?: RequestOptions): Promise<WorkOrder> {
    return (await this.send('workOrder.retry', { workOrderId }, options)).item;
  }

  /**
   * auto_assign_work_orders(), for parity: runs an assignment pass and returns the current
   * assignments. Assignment is automatic, so nobody has to call this.
   */
  async autoAssign(options?: RequestOptions): Promise<Reply<'workflow.autoAssign'>['assigned']> {
    return (await this.send('workflow.autoAssign', {}, options)).assigned;
  }

  /** Registers a data reference (add_data_reference); a local file's size and sha256 are checked when the workflow validates data. */
  async addDataReference(ref: Without<Request<'data.register'>, 'workflowId'>, options?: RequestOptions): Promise<DataReference> {
    return (await this.send('data.register', ref, options)).item;
  }

  /** Registers up to 1000 data references at once, all or none. */
  async addDataReferences(items: Request<'data.registerMany'>['items'], options?: RequestOptions): Promise<DataReference[]> {
    return (await this.send('data.registerMany', { items }, options)).items;
  }

  /** Makes a new version of a data reference; the previous one is kept in its history. */
  async updateDataReference(dataId: string, changes: Without<Request<'data.update'>, 'workflowId' | 'dataId'>, options?: RequestOptions): Promise<DataReference> {
    return (await this.send('data.update', { ...changes, dataId }, options)).item;
  }

  /** Re-checks a local file: valid, missing, or changed since its checksum was recorded. */
  async validateDataReference(dataId: string, options?: RequestOptions): Promise<DataReference> {
    return (await this.send('data.validate', { dataId }, options)).item;
  }

  /** One data reference with its provenance and history. */
  async getDataReference(dataId: string, options?: RequestOptions): Promise<DataReference> {
    return (await this.send('data.get', { dataId }, options)).item;
  }

  /**
   * Every data reference the filter matches (the filter of GET /api/workflows/:id/data), in its
   * sort order, fetched a page (`limit`) at a time.
   * @example for await (const ref of wf.dataReferences({ tags: ['raw'] })) console.log(ref.path);
   */
  dataReferences(filter: Without<Request<'data.search'>, 'workflowId' | 'cursor'> = {}, options?: RequestOptions): AsyncGenerator<DataReference, void, undefined> {
    return pages((cursor) => this.searchData(cursor === undefined ? filter : { ...filter, cursor }, options));
  }

  /**
   * One page of data references the filter matches, with their `total` (exact when `totalExact`,
   * else a lower bound); `nextCursor` asks for the next. A page may be short, even empty, with more to come.
   */
  searchData(filter: Without<Request<'data.search'>, 'workflowId'> = {}, options?: RequestOptions): Promise<Reply<'data.search'>> {
    return this.connection.request('data.search', { ...filter, workflowId: this.id }, options);
  }

  /** Links input references to output references through an operation. */
  async linkLineage(link: Without<Request<'lineage.link'>, 'workflowId'>, options?: RequestOptions): Promise<Reply<'lineage.link'>['item']> {
    return (await this.send('lineage.link', link, options)).item;
  }

  /**
   * What a reference was made from, to any depth or `maxDepth`, nearest first; `limit` (default
   * 1000, at most 2000) caps the nodes and the edges, and `truncated` says the walk stopped before the end.
   */
  upstream(dataId: string, depth?: number | Walk, options?: RequestOptions): Promise<Reply<'lineage.upstream'>> {
    return this.send('lineage.upstream', { dataId, ...walk(depth) }, options);
  }

  /** What was made from a reference, to any depth or `maxDepth`, nearest first, as `upstream`. */
  downstream(dataId: string, depth?: number | Walk, options?: RequestOptions): Promise<Reply<'lineage.downstream'>> {
    return this.send('lineage.downstream', { dataId, ...walk(depth) }, options);
  }

  /**
   * The workflow's whole lineage graph, gathered from its pages: every reference, every
   * transformation and edge. `version` is the last page's; a change made while the pages are
   * read may show in the later ones only. For a big graph, `lineageGraphPage` reads a page at a time.
   */
  async lineageGraph(options?: RequestOptions): Promise<Reply<'lineage.graph'>> {
    const graph = await this.lineageGraphPage({}, options);
    for (let cursor = graph.nextCursor; cursor !== null; ) {
      const page = await this.lineageGraphPage({ cursor }, options);
      graph.nodes.push(...page.nodes);
      graph.edges.push(...page.edges);
      graph.transformations.push(...page.transformations);
      graph.version = page.version;
      cursor = graph.nextCursor = page.nextCursor;
    }
    return graph;
  }

  /**
   * One page of the lineage graph, at most `limit` (default 1000, at most 2000) entries: the references first,
   * then the transformations, each with its edges; `nextCursor` asks for the next.
   */
  lineageGraphPage(page: Without<Request<'lineage.graph'>, 'workflowId'> = {}, options?: RequestOptions): Promise<Reply<'lineage.graph'>> {
    return this.send('lineage.graph', page, options);
  }

  /** A finished work order as an OpenLineage RunEvent, ready to POST to Marquez's /api/v1/lineage. */
  openLineageEvent(workOrderId: string, options?: RequestOptions): Promise<Reply<'lineage.openLineage'>> {
    return this.connection.request('lineage.openLineage', { workflowId: this.id, workOrderId }, options);
  }
}
