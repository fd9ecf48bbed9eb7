import type { ReplyOf, RequestOf } from '../shared/contract.ts';
import type { Agent } from '../shared/schemas/agent.ts';
import type { WorkflowHeader } from '../shared/schemas/workflow.ts';
import { Connection, type ConnectOptions, type RequestOptions } from './connection.ts';
import './dispose.ts';
import { pages } from './paging.ts';
import { WorkflowHandle, type Without } from './workflow-handle.ts';

type Request<E extends Parameters<Connection<'control'>['request']>[0]> = RequestOf<'control', E>;
type Reply<E extends Parameters<Connection<'control'>['request']>[0]> = ReplyOf<'control', E>;

/**
 * A control client: creates and drives workflows. Every request method takes `{ signal, timeoutMs }`
 * last. Close it with `await control.close()`, or let `await using` do it.
 */
export class ControlClient {
  constructor(readonly connection: Connection<'control'>) {}

  /**
   * Creates a workflow (pending) and returns its handle. Given its `id`, the create is sent again
   * after a failure that may not have taken effect (a failover), and one that did is its success.
   */
  async createWorkflow(input: Request<'workflow.create'>, options: RequestOptions = {}): Promise<WorkflowHandle> {
    const id = input.id;
    const reply = id
      ? await this.connection.createOnce(`workflow ${id}`, 'workflow.create', input, options, async () => {
          const existing = await this.connection.request('workflow.get', { workflowId: id }, options);
          return { workflow: { id } as Reply<'workflow.create'>['workflow'], version: existing.version };
        })
      : await this.connection.request('workflow.create', input, options);
    const handle = new WorkflowHandle(this.connection, reply.workflow.id);
    handle.version = reply.version;
    return handle;
  }

  /** A handle on an existing workflow (no request is made). */
  workflow(workflowId: string): WorkflowHandle {
    return new WorkflowHandle(this.connection, workflowId);
  }

  /**
   * Every workflow, oldest first, optionally by status, fetched a page (`limit`) at a time.
   * @example for await (const wf of control.workflows({ status: 'in_progress' })) console.log(wf.id, wf.progress);
   */
  workflows(filter: Without<Request<'workflow.list'>, 'cursor'> = {}, options?: RequestOptions): AsyncGenerator<WorkflowHeader, void, undefined> {
    return pages((cursor) => this.listWorkflows(cursor === undefined ? filter : { ...filter, cursor }, options));
  }

  /** One page of workflows, oldest first; `nextCursor` asks for the next. */
  listWorkflows(filter: Request<'workflow.list'> = {}, options?: RequestOptions): Promise<Reply<'workflow.list'>> {
    return this.connection.request('workflow.list', filter, options);
  }

  /** The whole agent pool with status, load and performance, gathered from its pages (1000 agents a request). */
  async listAgents(options?: RequestOptions): Promise<Agent[]> {
    const agents: Agent[] = [];
    for await (const agent of this.agents({ limit: 1000 }, options)) agents.push(agent);
    return agents;
  }

  /**
   * Every agent of the pool in id order, fetched a page (`limit`) at a time.
   * @example for await (const agent of control.agents()) console.log(agent.id, agent.status, agent.load);
   */
  agents(filter: Without<Request<'agent.list'>, 'cursor'> = {}, options?: RequestOptions): AsyncGenerator<Agent, void, undefined> {
    return pages((cursor) => this.listAgentsPage(cursor === undefined ? filter : { ...filter, cursor }, options));
  }

  /** One page of the agent pool in id order; `nextCursor` asks for the next. */
  listAgentsPage(page: Request<'agent.list'> = {}, options?: RequestOptions): Promise<Reply<'agent.list'>> {
    return this.connection.request('agent.list', page, options);
  }

  /** One agent. */
  getAgent(agentId: string, options?: RequestOptions): Promise<Agent> {
    return this.connection.request('agent.get', { agentId }, options);
  }

  /** update_agent_status: drain or reactivate an agent, or set its status note. */
  updateAgentStatus(agentId: string, change: Without<Request<'agent.update'>, 'agentId'>, options?: RequestOptions): Promise<Agent> {
    return this.connection.request('agent.update', { ...change, agentId }, options);
  }

  /** Deletes archived workflows that ended more than `olderThanMs` ago, and lists them. */
  async pruneArchive(olderThanMs: number, options?: RequestOptions): Promise<Reply<'archive.prune'>['removed']> {
    return (await this.connection.request('archive.prune', { olderThanMs }, options)).removed;
  }

  /** Disconnects; resolves once the connection is closed. */
  close(): Promise<void> {
    return this.connection.close();
  }

  /** `await using control = await connectControl(...)` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects a control client (an admin token).
 * @example await using control = await connectControl({ url, token }); const wf = await control.createWorkflow({ userQuery: 'Analyse sales' });
 */
export async function connectControl(options: ConnectOptions): Promise<ControlClient> {
  return new ControlClient(await Connection.open('control', options));
}
