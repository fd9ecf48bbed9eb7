import { describe, expect, it } from 'vitest';
import { pause, resume } from '../server/cli/pause.ts';
import { status } from '../server/cli/status.ts';
import { runCli } from './helpers/cli-in-process.ts';
import { control, startHub } from './helpers/hub.ts';
import { rawAgent } from './helpers/raw-agent.ts';
import { untilOrder } from './helpers/wait.ts';

// `switchboard pause` and `resume` in process (their hub runs here too): what they print, or the refusal they throw.

describe('switchboard pause and resume', () => {
  it('pause holds a workflow’s orders back, status shows it paused, and resume offers them; each run again says it left the workflow as it was', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'paused from the CLI' });
    await wf.start();
    await wf.createWorkOrder({ id: 'job', taskType: 't' });

    expect((await runCli(pause, hub.url, 'wf', '--reason', 'API over budget')).stdout).toMatch(
      /^workflow wf paused by test-admin at \S+Z \(API over budget\): its 1 queued work order and those queued later are not offered until switchboard resume wf\n$/,
    );
    expect(hub.state.workflows.get('wf')!.paused).toMatchObject({ by: 'test-admin', reason: 'API over budget' });
    expect((await runCli(pause, hub.url, 'wf')).stdout).toMatch(/^workflow wf was already paused by test-admin at \S+Z \(API over budget\): left as it was\n$/);
    expect((await runCli(status, hub.url)).stdout).toMatch(/\nwf +in_progress \(paused\) +0% +1 queued /);

    const worker = await rawAgent(hub.url, 'a', ['t']);
    const json = JSON.parse((await runCli(resume, hub.url, 'wf', '--json')).stdout);
    expect(json).toEqual({ changed: true, workflowId: 'wf', status: 'in_progress', paused: null, queued: 1 });
    expect((await worker.nextOffer()).assignment).toMatchObject({ workflowId: 'wf', workOrderId: 'job' });
    await untilOrder(hub, 'wf', 'job', 'offered');
    expect((await runCli(resume, hub.url, 'wf')).stdout).toBe('workflow wf is not paused: left as it was\n');
    expect((await runCli(status, hub.url)).stdout).toMatch(/\nwf +in_progress +0% /);
  });

  it('prints a pause’s reason as text: the control characters a client put in it reach no terminal', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'paused with an escape in its reason' });
    await wf.pause('budget\x1b]0;retitled\x07\nsecond line');
    const { stdout } = await runCli(pause, hub.url, 'wf');
    expect(stdout).toMatch(/^workflow wf was already paused by test-admin at \S+Z \(budget\?\]0;retitled\? second line\): left as it was\n$/);
  });

  it('names the refusal of an ended or unknown workflow, and refuses a missing id or a resume with a reason before connecting', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'ended' });
    await wf.cancel();
    expect((await runCli(pause, hub.url, 'wf')).error).toMatch(/^the hub refused to pause wf: INVALID_TRANSITION: cannot pause it: workflow wf is cancelled/);
    expect((await runCli(resume, hub.url, 'nope')).error).toMatch(/^the hub refused to resume nope: NOT_FOUND: /);
    expect((await runCli(pause, hub.url)).error).toBe('say which workflow: switchboard pause WORKFLOW');
    expect((await runCli(pause, hub.url, 'a', 'b')).error).toBe('one workflow at a time: switchboard pause WORKFLOW (also given: b)');
    expect((await runCli(resume, hub.url, 'wf', '--reason', 'why')).error).toBe('--reason goes with switchboard pause');
  });
});
