import { listAgents, requireAgent } from '../domain/work/agents.ts';
import { getWorkOrder, listWorkflows, listWorkOrders } from '../domain/machinery/queries.ts';
import type { DataFiles } from '../data-files.ts';
import type { HubDirectory } from '../hub-directory.ts';
import type { Archiver } from '../archiver.ts';
import type { StateWriter } from '../state-writer.ts';
import type { WorkflowReads } from '../workflow-reads.ts';
import { requireWorkflow } from '../domain/machinery/context.ts';
import type { ReportRenderer } from '../reports/report-renderer.ts';
import { writeReports } from '../reports/writer.ts';
import { commandHandler } from './command-handler.ts';
import { inventoryHandlers } from './inventory.ts';
import type { Handlers } from './namespaces.ts';
import { reportReply, workflowReply } from './replies.ts';
import type { Transfers } from './transfers.ts';

/** What the `/control` handlers work with. */
export interface ControlParts {
  hub: StateWriter;
  reads: WorkflowReads;
  archiver: Archiver;
  files: DataFiles;
  hubDirectory: HubDirectory;
  openLineageProducer: string;
  renderer: ReportRenderer;
  transfers: Transfers;
}

/**
 * The handlers of `/control`: reads come straight from state (or the archive, for a workflow that
 * left memory), changes go through dispatch. An output folder in the hub's data directory
 * (outside `workflows/`) is refused before dispatch.
 */
export function controlHandlers(parts: ControlParts): Handlers<'control'> {
  const { hub, reads, archiver, hubDirectory, renderer, transfers } = parts;
  const create = commandHandler(hub, 'workflow.create');
  return {
    ...inventoryHandlers(hub, reads, parts.files, parts.openLineageProducer),
    'workflow.create': async (input, session) => {
      if (input.outputFolder !== undefined) await hubDirectory.requireOutputFolder(input.outputFolder);
      return create(input, session);
    },
    'workflow.list': async (input) => {
      await reads.archive.ready();
      return listWorkflows(hub.state, input, undefined, reads.archive);
    },
    'workflow.get': (input, _session, socket) => reads.read(input.workflowId, (state) => workflowReply(state, input.workflowId, socket, transfers)),
    'workflow.summary': (input) => reads.summary(input.workflowId, hub.now()),
    'workflow.start': commandHandler(hub, 'workflow.start'),
    'workflow.complete': commandHandler(hub, 'workflow.complete'),
    'workflow.fail': commandHandler(hub, 'workflow.fail'),
    'workflow.cancel': commandHandler(hub, 'workflow.cancel'),
    'workflow.pause': commandHandler(hub, 'workflow.pause'),
    'workflow.resume': commandHandler(hub, 'workflow.resume'),
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
    'workOrder.get': async (input) => getWorkOrder(await reads.stateFor(input.workflowId), input.workflowId, input.workOrderId),
    'workOrder.list': async (input) => listWorkOrders(await reads.stateFor(input.workflowId), input),
    'workOrder.cancel': commandHandler(hub, 'workOrder.cancel'),
    'workOrder.retry': commandHandler(hub, 'workOrder.retry'),
    'workflow.autoAssign': commandHandler(hub, 'workflow.autoAssign'),
    'workflow.report': (input, _session, socket) =>
      reads.read(input.workflowId, async (state) => reportReply((await renderer.render(state, input.workflowId, [input.format]))[0]!, socket, transfers)),
    'workflow.generateReports': async (input) => {
      const state = await reads.stateFor(input.workflowId);
      const workflow = requireWorkflow(state, input.workflowId);
      const reports = await renderer.render(state, input.workflowId);
      return { version: reports[0]!.version, files: await writeReports(workflow.outputFolder, reports, hubDirectory) };
    },
    'agent.list': (input) => listAgents(hub.state, input),
    'agent.get': (input) => requireAgent(hub.state, input.agentId),
    'agent.update': commandHandler(hub, 'agent.update'),
    'transfer.read': (input, _session, socket) => ({ data: transfers.read(socket, input.id, input.part) }),
    'archive.prune': async (input) => ({ removed: await archiver.prune(input.olderThanMs) }),
  };
}
