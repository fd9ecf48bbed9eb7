import type { ReplyOf, RequestOf } from '../shared/contract.ts';
import { Connection, type ConnectOptions } from './connection.ts';

type Without<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Request<E extends Parameters<Connection<'control'>['request']>[0]> = RequestOf<'control', E>;
type Reply<E extends Parameters<Connection<'control'>['request']>[0]> = ReplyOf<'control', E>;

/**
 * One workflow, as the Python package's WorkflowManager and WorkflowUpdater: lifecycle, steps,
 * objectives, KPIs and stage progress. `version` is the workflow version of the last reply.
 */
export class WorkflowHandle {
  /** The workflow version after the last change made through this handle. */
  version = 0;

  constructor(
    private readonly connection: Connection<'control'>,
    readonly id: string,
  ) {}

  private seen<T extends { version: number }>(reply: T): T {
    this.version = Math.max(this.version, reply.version);
    return reply;
  }

  /** The whole state of the workflow. */
  async get(): Promise<Reply<'workflow.get'>['workflow']> {
    return this.seen(await this.connection.request('workflow.get', { workflowId: this.id })).workflow;
  }

  /** Status, durations, counts, progress, objectives and KPIs (get_workflow_summary). */
  async summary(): Promise<Reply<'workflow.summary'>> {
    return this.seen(await this.connection.request('workflow.summary', { workflowId: this.id }));
  }

  /** pending → in_progress. */
  async start(): Promise<Reply<'workflow.start'>> {
    return this.seen(await this.connection.request('workflow.start', { workflowId: this.id }));
  }

  /** in_progress → completed. */
  async complete(): Promise<Reply<'workflow.complete'>> {
    return this.seen(await this.connection.request('workflow.complete', { workflowId: this.id }));
  }

  /** pending | in_progress → failed, with the reason. */
  async fail(reason: string): Promise<Reply<'workflow.fail'>> {
    return this.seen(await this.connection.request('workflow.fail', { workflowId: this.id, reason }));
  }

  /** pending | in_progress → cancelled. */
  async cancel(reason?: string): Promise<Reply<'workflow.cancel'>> {
    const payload = reason === undefined ? { workflowId: this.id } : { workflowId: this.id, reason };
    return this.seen(await this.connection.request('workflow.cancel', payload));
  }

  /** Sets a stage's progress, 0..100 (update_progress). */
  async updateProgress(stage: string, percentage: number): Promise<Reply<'workflow.progress'>['item']> {
    return this.seen(await this.connection.request('workflow.progress', { workflowId: this.id, stage, percentage })).item;
  }

  /** Adds an execution step; `start: true` starts it at once. */
  async addStep(step: Without<Request<'step.add'>, 'workflowId'>): Promise<Reply<'step.add'>['item']> {
    return this.seen(await this.connection.request('step.add', { ...step, workflowId: this.id })).item;
  }

  /** pending → running. */
  async startStep(stepId: string): Promise<Reply<'step.start'>['item']> {
    return this.seen(await this.connection.request('step.start', { workflowId: this.id, stepId })).item;
  }

  /** running → completed, with an optional result. */
  async completeStep(stepId: string, result?: unknown): Promise<Reply<'step.complete'>['item']> {
    const payload = result === undefined ? { workflowId: this.id, stepId } : { workflowId: this.id, stepId, result };
    return this.seen(await this.connection.request('step.complete', payload)).item;
  }

  /** pending | running → failed, with the error. */
  async failStep(stepId: string, error: string): Promise<Reply<'step.fail'>['item']> {
    return this.seen(await this.connection.request('step.fail', { workflowId: this.id, stepId, error })).item;
  }

  /** Adds an objective (add_objective). */
  async addObjective(objective: Without<Request<'objective.add'>, 'workflowId'>): Promise<Reply<'objective.add'>['item']> {
    return this.seen(await this.connection.request('objective.add', { ...objective, workflowId: this.id })).item;
  }

  /** Changes an objective's status, progress or fields. */
  async updateObjective(
    objectiveId: string,
    changes: Without<Request<'objective.update'>, 'workflowId' | 'objectiveId'>,
  ): Promise<Reply<'objective.update'>['item']> {
    return this.seen(await this.connection.request('objective.update', { ...changes, workflowId: this.id, objectiveId })).item;
  }

  /** Adds a KPI with a numeric target (add_kpi). */
  async addKpi(kpi: Without<Request<'kpi.add'>, 'workflowId'>): Promise<Reply<'kpi.add'>['item']> {
    return this.seen(await this.connection.request('kpi.add', { ...kpi, workflowId: this.id })).item;
  }

  /** A report of the workflow as it is now (json, markdown or html), with its version and content hash. */
  report(format: Request<'workflow.report'>['format'] = 'markdown'): Promise<Reply<'workflow.report'>> {
    return this.connection.request('workflow.report', { workflowId: this.id, format });
  }

  /** Writes report.json, report.md and report.html to the workflow's outputFolder (generate_all_reports). */
  generateReports(): Promise<Reply<'workflow.generateReports'>> {
    return this.connection.request('workflow.generateReports', { workflowId: this.id });
  }

  /** Creates a work order; the hub offers it to the best agent as soon as it is ready. */
  async createWorkOrder(order: Without<Request<'workOrder.create'>, 'workflowId'>): Promise<Reply<'workOrder.create'>['item']> {
    return this.seen(await this.connection.request('workOrder.create', { ...order, workflowId: this.id })).item;
  }

  /** Creates up to 1000 work orders at once, all or none; they may depend on each other by id. */
  async createWorkOrders(orders: Request<'workOrder.createMany'>['orders']): Promise<Reply<'workOrder.createMany'>['items']> {
    return this.seen(await this.connection.request('workOrder.createMany', { workflowId: this.id, orders })).items;
  }

  /** One work order. */
  async getWorkOrder(workOrderId: string): Promise<Reply<'workOrder.get'>['item']> {
    return this.seen(await this.connection.request('workOrder.get', { workflowId: this.id, workOrderId })).item;
  }

  /** Work orders in creation order, optionally by state, a page at a time. */
  listWorkOrders(filter: Without<Request<'workOrder.list'>, 'workflowId'> = {}): Promise<Reply<'workOrder.list'>> {
    return this.connection.request('workOrder.list', { ...filter, workflowId: this.id });
  }

  /** Cancels a work order; an agent running it is told to stop (its ctx.signal aborts). */
  async cancelWorkOrder(workOrderId: string, reason?: string): Promise<Reply<'workOrder.cancel'>['item']> {
    const payload = reason === undefined ? { workflowId: this.id, workOrderId } : { workflowId: this.id, workOrderId, reason };
    return this.seen(await this.connection.request('workOrder.cancel', payload)).item;
  }

  /**
   * auto_assign_work_orders(), for parity: runs an assignment pass and returns the current
   * assignments. Assignment is automatic, so nobody has to call this.
   */
  async autoAssign(): Promise<Reply<'workflow.autoAssign'>['assigned']> {
    return (await this.connection.request('workflow.autoAssign', { workflowId: this.id })).assigned;
  }

  /** Records a KPI value; the history is kept and `met` re-evaluated. */
  async recordKpi(kpiId: string, value: number): Promise<Reply<'kpi.record'>['item']> {
    return this.seen(await this.connection.request('kpi.record', { workflowId: this.id, kpiId, value })).item;
  }

  /** Registers a data reference (add_data_reference); a local file's size and sha256 are checked when the workflow validates data. */
  async addDataReference(ref: Without<Request<'data.register'>, 'workflowId'>): Promise<Reply<'data.register'>['item']> {
    return this.seen(await this.connection.request('data.register', { ...ref, workflowId: this.id })).item;
  }

  /** Registers up to 1000 data references at once, all or none. */
  async addDataReferences(items: Request<'data.registerMany'>['items']): Promise<Reply<'data.registerMany'>['items']> {
    return this.seen(await this.connection.request('data.registerMany', { workflowId: this.id, items })).items;
  }

  /** Makes a new version of a data reference; the previous one is kept in its history. */
  async updateDataReference(dataId: string, changes: Without<Request<'data.update'>, 'workflowId' | 'dataId'>): Promise<Reply<'data.update'>['item']> {
    return this.seen(await this.connection.request('data.update', { ...changes, workflowId: this.id, dataId })).item;
  }

  /** Re-checks a local file: valid, missing, or changed since its checksum was recorded. */
  async validateDataReference(dataId: string): Promise<Reply<'data.validate'>['item']> {
    return this.seen(await this.connection.request('data.validate', { workflowId: this.id, dataId })).item;
  }

  /** One data reference with its provenance and history. */
  async getDataReference(dataId: string): Promise<Reply<'data.get'>['item']> {
    return this.seen(await this.connection.request('data.get', { workflowId: this.id, dataId })).item;
  }

  /** Searches data references (the same filter as GET /api/workflows/:id/data), a page at a time. */
  searchData(filter: Without<Request<'data.search'>, 'workflowId'> = {}): Promise<Reply<'data.search'>> {
    return this.connection.request('data.search', { ...filter, workflowId: this.id });
  }

  /** Links input references to output references through an operation. */
  async linkLineage(link: Without<Request<'lineage.link'>, 'workflowId'>): Promise<Reply<'lineage.link'>['item']> {
    return this.seen(await this.connection.request('lineage.link', { ...link, workflowId: this.id })).item;
  }

  /** What a reference was made from, to any depth or `maxDepth`. */
  upstream(dataId: string, maxDepth?: number): Promise<Reply<'lineage.upstream'>> {
    return this.connection.request('lineage.upstream', maxDepth === undefined ? { workflowId: this.id, dataId } : { workflowId: this.id, dataId, maxDepth });
  }

  /** What was made from a reference, to any depth or `maxDepth`. */
  downstream(dataId: string, maxDepth?: number): Promise<Reply<'lineage.downstream'>> {
    return this.connection.request('lineage.downstream', maxDepth === undefined ? { workflowId: this.id, dataId } : { workflowId: this.id, dataId, maxDepth });
  }

  /** The workflow's whole lineage graph. */
  lineageGraph(): Promise<Reply<'lineage.graph'>> {
    return this.connection.request('lineage.graph', { workflowId: this.id });
  }

  /** A finished work order as an OpenLineage RunEvent, ready to POST to Marquez's /api/v1/lineage. */
  openLineageEvent(workOrderId: string): Promise<Reply<'lineage.openLineage'>> {
    return this.connection.request('lineage.openLineage', { workflowId: this.id, workOrderId });
  }
}

/** A control client: creates and drives workflows. */
export class ControlClient {
  constructor(readonly connection: Connection<'control'>) {}

  /** Creates a workflow (pending) and returns its handle. */
  async createWorkflow(input: Request<'workflow.create'>): Promise<WorkflowHandle> {
    const reply = await this.connection.request('workflow.create', input);
    const handle = new WorkflowHandle(this.connection, reply.workflow.id);
    handle.version = reply.version;
    return handle;
  }

  /** A handle on an existing workflow (no request is made). */
  workflow(workflowId: string): WorkflowHandle {
    return new WorkflowHandle(this.connection, workflowId);
  }

  /** Lists workflows, oldest first, a page at a time. */
  listWorkflows(filter: Request<'workflow.list'> = {}): Promise<Reply<'workflow.list'>> {
    return this.connection.request('workflow.list', filter);
  }

  /** The agent pool with status, load and performance. */
  async listAgents(): Promise<Reply<'agent.list'>['items']> {
    return (await this.connection.request('agent.list', {})).items;
  }

  /** One agent. */
  getAgent(agentId: string): Promise<Reply<'agent.get'>> {
    return this.connection.request('agent.get', { agentId });
  }

  /** update_agent_status: drain or reactivate an agent, or set its status note. */
  updateAgentStatus(agentId: string, change: Without<Request<'agent.update'>, 'agentId'>): Promise<Reply<'agent.update'>> {
    return this.connection.request('agent.update', { ...change, agentId });
  }

  /** Disconnects. */
  close(): void {
    this.connection.close();
  }
}

/**
 * Connects a control client (an admin token).
 * @example const control = await connectControl({ url, token }); const wf = await control.createWorkflow({ userQuery: 'Analyse sales' });
 */
export async function connectControl(options: ConnectOptions): Promise<ControlClient> {
  return new ControlClient(await Connection.open('control', options));
}
