import type { EventName } from '../../shared/contract.ts';
import type { CommandType } from '../domain/machinery/commands.ts';
import { listAgents, requireAgent } from '../domain/work/agents.ts';
import { getWorkflow, getWorkOrder, listWorkflows, listWorkOrders, workflowSummary } from '../domain/machinery/queries.ts';
import type { DataFiles } from '../data-files.ts';
import type { HubDirectory } from '../hub-directory.ts';
import type { Hub } from '../hub.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import { reportsOf, writeReports } from '../reports/writer.ts';
import { inventoryHandlers } from './inventory.ts';
import type { Handler, Handlers } from './namespaces.ts';

/** A handler that turns the request into the command of the same name and dispatches it. */
function command<E extends EventName<'control'> & CommandType>(hub: Hub, type: E): Handler<'control', E> {
  return (input, session) => hub.dispatch({ type, input, actor: session.actor } as never) as never;
}

/**
 * The handlers of `/control`: reads come straight from state, changes go through dispatch. An
 * output folder in the hub's data directory (outside `workflows/`) is refused before dispatch.
 */
export function controlHandlers(hub: Hub, files: DataFiles, hubDirectory: HubDirectory, openLineageProducer: string): Handlers<'control'> {
  const create = command(hub, 'workflow.create');
  return {
    ...inventoryHandlers(hub, files, openLineageProducer),
    'workflow.create': async (input, session, socket) => {
      if (input.outputFolder !== undefined) await hubDirectory.requireOutputFolder(input.outputFolder);
      return create(input, session, socket);
    },
    'workflow.list': (input) => listWorkflows(hub.state, input),
    'workflow.get': (input) => getWorkflow(hub.state, input.workflowId),
    'workflow.summary': (input) => workflowSummary(hub.state, input.workflowId, hub.now()),
    'workflow.start': command(hub, 'workflow.start'),
    'workflow.complete': command(hub, 'workflow.complete'),
    'workflow.fail': command(hub, 'workflow.fail'),
    'workflow.cancel': command(hub, 'workflow.cancel'),
    'workflow.progress': command(hub, 'workflow.progress'),
    'step.add': command(hub, 'step.add'),
    'step.start': command(hub, 'step.start'),
    'step.complete': command(hub, 'step.complete'),
    'step.fail': command(hub, 'step.fail'),
    'objective.add': command(hub, 'objective.add'),
    'objective.update': command(hub, 'objective.update'),
    'kpi.add': command(hub, 'kpi.add'),
    'kpi.record': command(hub, 'kpi.record'),
    'workOrder.create': command(hub, 'workOrder.create'),
    'workOrder.createMany': command(hub, 'workOrder.createMany'),
    'workOrder.get': (input) => getWorkOrder(hub.state, input.workflowId, input.workOrderId),
    'workOrder.list': (input) => listWorkOrders(hub.state, input),
    'workOrder.cancel': command(hub, 'workOrder.cancel'),
    'workflow.autoAssign': command(hub, 'workflow.autoAssign'),
    'workflow.report': (input) => reportsOf(hub.state, input.workflowId, [input.format])[0]!,
    'workflow.generateReports': async (input) => {
      const workflow = requireWorkflow(hub.state, input.workflowId);
      const reports = reportsOf(hub.state, input.workflowId);
      return { version: reports[0]!.version, files: await writeReports(workflow.outputFolder, reports, hubDirectory) };
    },
    'agent.list': () => listAgents(hub.state),
    'agent.get': (input) => requireAgent(hub.state, input.agentId),
    'agent.update': command(hub, 'agent.update'),
  };
}
