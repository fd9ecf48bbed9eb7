// External updates: several independent updaters change one workflow at once, set an agent's
// status and register data, while a monitor follows every change live and a plain HTTP client
// reads the summary. The Python package's WorkflowUpdater (update_progress, update_agent_status,
// add_data_reference); its locks become the hub's single writer.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAgent, connectControl, connectMonitor, type WorkflowSummary } from 'switchboard/client';
import { useHub } from './support/hub.ts';

const hub = await useHub();
const control = await connectControl({ url: hub.url, token: hub.tokens.admin });
const monitor = await connectMonitor({ url: hub.url, token: hub.tokens.monitor });
const agent = await connectAgent({ url: hub.url, token: hub.tokens.agent, agentId: 'agent_001', agentType: 'data_processing' });
const updaters = await Promise.all([1, 2, 3].map(() => connectControl({ url: hub.url, token: hub.tokens.admin })));
try {
  const wf = await control.createWorkflow({ userQuery: 'Customer analytics with external updates', config: { enableDataValidation: hub.validatesData } });
  await wf.start();
  const live = await monitor.subscribe(wf.id);
  let messages = 0;
  let operations = 0;
  live.on('change', (change) => {
    messages++;
    operations += change.ops.length;
  });
  console.log(`monitor follows ${wf.id} from version ${live.version}`);

  // Three updaters, each its own connection, report their stages at the same time.
  const stages = ['data_loading', 'analysis', 'reporting'];
  await Promise.all(
    updaters.map(async (updater, i) => {
      const handle = updater.workflow(wf.id);
      for (const percentage of [25, 50, 75, 100]) await handle.updateProgress(stages[i]!, percentage);
    }),
  );
  console.log(`update_progress: 3 updaters × 4 updates; overall progress ${(await wf.summary()).progress}%`);

  const busy = await control.updateAgentStatus('agent_001', { note: 'Processing data' });
  console.log(`update_agent_status: agent_001 is ${busy.status}, note "${busy.note}"`);
  const draining = await control.updateAgentStatus('agent_001', { status: 'draining' });
  const active = await control.updateAgentStatus('agent_001', { status: 'active', note: null });
  console.log(`drained and reactivated agent_001: ${draining.status} → ${active.status}`);

  const file = join(hub.dataRoot, 'data.csv');
  writeFileSync(file, 'id,spend\n1,120\n2,80\n');
  const ref = await wf.addDataReference({ id: 'customers', path: file, description: 'Customer dataset', dataType: 'csv' });
  console.log(`add_data_reference: ${ref.id} (${ref.dataType}) ${ref.status}, ${ref.size ?? '?'} bytes, sha256 ${ref.checksum?.slice(0, 12) ?? 'not computed'}`);

  const response = await fetch(`${hub.url}/api/workflows/${wf.id}/summary`, { headers: { authorization: `Bearer ${hub.tokens.monitor}` } });
  const summary = (await response.json()) as WorkflowSummary;
  console.log(`GET /api/workflows/${wf.id}/summary → ${response.status}: progress ${summary.progress}%, version ${summary.version}`);

  const state = await live.until(() => live.version >= wf.version, { what: `the monitor to reach version ${wf.version}` });
  console.log(`monitor saw ${operations} operations in ${messages} messages (changes are coalesced per tick)`);
  console.log(`monitor in sync at version ${live.version}: stages ${Object.entries(state.stages).map(([name, s]) => `${name} ${s.progress}%`).join(', ')}; data [${Object.keys(state.data).join(', ')}]`);
} finally {
  await Promise.all([...updaters.map((updater) => updater.close()), agent.close(), monitor.close(), control.close()]);
  await hub.close();
}
