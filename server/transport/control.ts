import { listAgents, requireAgent } from '../domain/work/agents.ts';
import { getWorkflow, getWorkOrder, listWorkflows, listWorkOrders, workflowSummary } from '../domain/machinery/queries.ts';
import type { DataFiles } from '../data-files.ts';
import type { HubDirectory } from '../hub-directory.ts';
import type { StateWriter } from '../state-writer.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import { reportsOf, writeReports } from '../reports/writer.ts';
import { commandHandler } from './command-handler.ts';
import { inventoryHandlers } from './inventory.ts';
import type { Handlers } from './namespaces.ts';

/**
 * The handlers of `/control`: reads come straight from state, changes go through dispatch. An
 * output folder in the hub's data directory (outside `workflows/`) is refused before dispatch.
 */
export function controlHandlers(hub: StateWriter, files: DataFiles, hubDirectory: HubDirectory, openLineageProducer: string): Handlers<'control'> {
  const create = commandHandler(hub, 'workflow.create');
  return {
    ...inventoryHandlers(hub, files, openLineageProducer),
    'workflow.create': async (input, session) => {
      if (input.outputFolder !== undefined) await hubDirectory.requireOutputFolder(input.outputFolder);
      return create(input, session);
    },
    'workflow.list': (input) => listWorkflows(hub.state, input),
    'workflow.get': (input) => getWorkflow(hub.state, input.workflowId),
    'workflow.summary': (input) => workflowSummary(hub.state, input.workflowId, hub.now()),
    'workflow.start': commandHandler(hub, 'workflow.start'),
    'workflow.complete': commandHandler(hub, 'workflow.complete'),
    'workflow.fail': commandHandler(hub, 'workflow.fail'),
    'workflow.cancel': commandHandler(hub, 'workflow.cancel'),
    'workflow.progress': commandHandler(hub, 'workflow.progress'),
    'step.add': commandHandler(hub, 'step.add'),
    'step.start': commandHandler(hub, 'step.start'),
    'step.complete': commandHandler(hub, 'step.complete'),
    'step.fail': commandHandler(hub, 'step.fail'),
    'objective.add': commandHandler(hub, 'objective.add'),
    'objective.update': commandHandler(hub, 'objective.update'),
    'kpi.add': commandHandler(hub, 'kpi.add'),
    'kpi.record': commandHandler(hub, 'kpi.record'),
    'workOrder.create': commandHandler(hub, 'workOrder.create'),
    'workOrder.createMany': commandHandler(hub, 'workOrder.createMany'),
    'workOrder.get': (input) => getWorkOrder(hub.state, input.workflowId, input.workOrderId),
    'workOrder.list': (input) => listWorkOrders(hub.state, input),
    'workOrder.cancel': commandHandler(hub, 'workOrder.cancel'),
    'workflow.autoAssign': commandHandler(hub, 'workflow.autoAssign'),
    'workflow.report': async (input) => (await reportsOf(hub.state, input.workflowId, [input.format]))[0]!,
    'workflow.generateReports': async (input) => {
      const workflow = requireWorkflow(hub.state, input.workflowId);
      const reports = await reportsOf(hub.state, input.workflowId);
      return { version: reports[0]!.version, files: await writeReports(workflow.outputFolder, reports, hubDirectory) };
    },
    'agent.list': () => listAgents(hub.state),
    'agent.get': (input) => requireAgent(hub.state, input.agentId),
    'agent.update': commandHandler(hub, 'agent.update'),
  };
}
