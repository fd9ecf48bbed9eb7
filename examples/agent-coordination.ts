// Agent coordination: agents register their capabilities, work orders name what they need, and the
// hub pushes each order to the best agent. The Python package's AgentCoordinator
// (register_agent, create_work_order, auto_assign_work_orders).
import { connectAgent, connectControl, connectMonitor, type TaskReport } from 'switchboard/client';
import { z } from 'zod';
import { useHub } from './support/hub.ts';

const hub = await useHub();
const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
const monitor = await connectMonitor({ url: hub.url, token: hub.tokens.monitor });
const [processor, writer] = await Promise.all([
  connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'data_processor', agentType: 'data_processing', capabilities: ['csv_processing', 'data_validation'], maxConcurrentTasks: 3 }),
  connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'report_writer', agentType: 'reporting', capabilities: ['markdown'] }),
]);
try {
  // A handler per task type; returning completes the work order, throwing fails the attempt (and it is retried).
  // The schema checks each order's input before the handler runs; the handler sees it typed.
  await processor.onTask('data_processing', { input: z.object({ csv: z.string() }) }, async (task, ctx) => {
    const rows = task.input.csv.trim().split('\n').slice(1);
    await ctx.progress(50, `parsed ${rows.length} rows`);
    const valid = rows.filter((row) => row.split(',').every((cell) => cell.trim() !== ''));
    return { result: { rows: rows.length, valid: valid.length } };
  });
  await writer.onTask('reporting', (task) => ({ result: { title: `Report on ${task.description}` } }));
  for (const agent of await control.listAgents()) {
    if (agent.id === 'data_processor' || agent.id === 'report_writer') {
      console.log(`registered ${agent.id} (${agent.agentType}): capabilities [${agent.capabilities.join(', ')}], ${agent.maxConcurrentTasks} slot(s)`);
    }
  }
  const reports: TaskReport[] = [];
  for (const agent of [processor, writer]) agent.on('report', (report) => reports.push(report));

  const wf = await control.createWorkflow({ userQuery: 'Multi-agent data processing' });
  const watch = await monitor.subscribe(wf.id);
  // Created before start, the orders wait in `pending`; start() releases them to the agents.
  const csv = 'id,name,email\n1,Ada,ada@example.com\n2,Grace,\n3,Alan,alan@example.com\n';
  const processing = await wf.createWorkOrder({ taskType: 'data_processing', description: 'Process customer data CSV', requirements: ['csv_processing'], priority: 'high', input: { csv } });
  const reporting = await wf.createWorkOrder({ taskType: 'reporting', description: 'customer data', requirements: ['markdown'], dependencies: [processing.id] });
  const gpu = await wf.createWorkOrder({ taskType: 'data_processing', description: 'Train on GPU', requirements: ['gpu'] });
  console.log(`created ${processing.id} (needs csv_processing), ${reporting.id} (after it), ${gpu.id} (needs gpu): ${processing.state}, ${reporting.state}, ${gpu.state}`);
  await wf.start();
  const assigned = await wf.autoAssign(); // assignment is automatic; this lists what is assigned right now
  console.log(`assignments right after start: ${assigned.map((a) => `${a.workOrderId} → ${a.agentId}`).join(', ') || 'none'}`);

  await watch.until((state) => state.workOrderCounts.completed === 2, { what: 'the two servable orders to complete' });
  for (const id of [processing.id, reporting.id]) {
    const order = await wf.getWorkOrder(id);
    console.log(`${id}: ${order.state} by ${order.history.at(-1)?.agentId}, result ${JSON.stringify(order.result)}`);
  }
  const waiting = await wf.getWorkOrder(gpu.id);
  console.log(`${gpu.id}: still ${waiting.state}; no agent has the gpu capability`);
  await wf.cancelWorkOrder(gpu.id, 'no GPU agent in this demo');
  console.log(`accepted reports: ${reports.filter((r) => r.accepted).length}`);
  const stats = await control.getAgent('data_processor');
  console.log(`data_processor: ${stats.stats.completed} completed, ${stats.stats.failed} failed, load ${stats.load}`);
  await wf.complete();
  console.log(`agent coordination: ${(await wf.summary()).status}`);
} finally {
  await Promise.all([processor.close(), writer.close(), monitor.close(), control.close()]);
  await hub.close();
}
