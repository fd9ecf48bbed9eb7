import { describe, expect, it } from 'vitest';
import { retry } from '../server/cli/retry.ts';
import { runCli } from './helpers/cli-in-process.ts';
import { control, startHub } from './helpers/hub.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { untilOrder, untilWorkflow } from './helpers/wait.ts';

// `switchboard retry` in process (its hub runs here too): what it prints, or the hub's refusal it throws.

/** `switchboard retry ARGS` against `url`. */
const run = (url: string, ...args: string[]) => runCli(retry, url, ...args);

describe('switchboard retry', () => {
  it('queues a failed order again and offers a declined one again, saying what happened; refusals name their code and change nothing', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'retry from the CLI' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'a', ['t']);
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1 });
    await wf.createWorkOrder({ id: 'after', taskType: 't', dependencies: ['job'] });
    const first = await worker.nextOffer();
    first.ack({ accept: true });
    expect((await worker.request('task.fail', { ...refOf(first.assignment), error: 'disk full', retryable: true })).ok).toBe(true);
    await untilOrder(hub, 'wf', 'after', 'failed');

    // A dependent of a failed order: CONFLICT, naming it. An unknown order: NOT_FOUND.
    expect((await run(hub.url, 'wf', 'after')).error).toMatch(/^the hub refused to retry after of wf: CONFLICT: .*dependency job is failed/);
    expect((await run(hub.url, 'wf', 'nope')).error).toMatch(/^the hub refused to retry nope of wf: NOT_FOUND: /);
    expect(hub.state.workflows.get('wf')!.workOrders['after']!.state).toBe('failed');

    // The failed order goes back, its attempts kept; the agent is offered it and declines.
    // Offered in the same command when a free agent can take it.
    expect((await run(hub.url, 'wf', 'job')).stdout).toMatch(
      /^work order job of wf: failed -> (queued|offered)\n {2}attempts: 1 so far, 0 of 1 since its last retry\n {2}declines forgotten: none \(no agent had declined it\)\n$/,
    );
    (await worker.nextOffer()).ack({ accept: false, reason: 'busy' });
    await untilWorkflow(hub, 'wf', (w) => w.workOrders['job']?.declinedBy.length === 1, 'the decline');

    const json = JSON.parse((await run(hub.url, 'wf', 'job', '--json')).stdout);
    expect(json).toMatchObject({ was: 'queued', changed: true, forgottenDeclines: ['a'], order: { id: 'job', attempts: 1, declinedBy: [] } });
    expect(['queued', 'offered']).toContain(json.order.state);
    const again = await worker.nextOffer();
    again.ack({ accept: true });
    await untilOrder(hub, 'wf', 'job', 'running');

    // A running order: INVALID_TRANSITION, and it keeps running.
    expect((await run(hub.url, 'wf', 'job')).error).toMatch(/^the hub refused to retry job of wf: INVALID_TRANSITION: work order job is running/);
    expect(hub.state.workflows.get('wf')!.workOrders['job']!.state).toBe('running');
  });

  it('says when a queued order had nothing to retry, and refuses a missing order id before connecting', async () => {
    const hub = await startHub();
    const wf = await (await control(hub)).createWorkflow({ id: 'wf', userQuery: 'nothing to retry' });
    await wf.createWorkOrder({ id: 'idle', taskType: 'nobody' });
    await wf.start();
    await untilOrder(hub, 'wf', 'idle', 'queued');
    expect((await run(hub.url, 'wf', 'idle')).stdout).toBe('work order idle of wf is queued, declined by no agent and waiting out no backoff: left as it was\n');
    expect((await run(hub.url, 'wf')).error).toBe('say which order: switchboard retry WORKFLOW ORDER');
    expect((await run(hub.url, 'wf', 'a', 'b')).error).toBe('one order at a time: switchboard retry WORKFLOW ORDER (also given: b)');
  });
});
