import { describe, expect, it, onTestFinished } from 'vitest';
import { gateFileReads, outputRoot } from './helpers/gated-reads.ts';
import { control, startHub } from './helpers/hub.ts';
import { rawAgent, rawAgentOnStartedWorkflow, refOf } from './helpers/raw-agent.ts';
import { untilOrder, untilTrue } from './helpers/wait.ts';

/**
 * A hub whose data roots hold one output file, with its reading of files held until `gate` is
 * resolved (a big file being hashed); `writer` takes task type t, `prober` task type p.
 */
async function setup() {
  const { dir, file } = outputRoot();
  const hub = await startHub({ sweepIntervalMs: 20, dataRoots: [dir] });
  const wf = await (await control(hub)).createWorkflow({ userQuery: 'a big output' });
  await wf.start();
  const writer = await rawAgent(hub.url, 'writer', ['t']);
  const prober = await rawAgent(hub.url, 'prober', ['p']);
  onTestFinished(() => {
    writer.close();
    prober.close();
  });
  return { hub, wf, writer, prober, file, ...gateFileReads() };
}

// PROTOCOL.md: a report on an offered attempt accepts it, and one that arrives within the lease is taken.
describe('a report whose files the hub is still reading', () => {
  it('is taken although reading them outlasts the lease it arrived within', async () => {
    const { hub, wf, writer, prober, file, gate, reading } = await setup();
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1, timeouts: { leaseMs: 1000 } });
    const { assignment, ack } = await writer.nextOffer();
    ack({ accept: true });
    await untilOrder(hub, wf.id, 'job', 'running');
    const completion = writer.request('task.complete', { ...refOf(assignment), result: 'rows: 1', outputs: [{ id: 'out', path: file }] });
    await reading();
    // A probe with the same lease, accepted later and then silent: once it lapsed, the job's lease would have too.
    await wf.createWorkOrder({ id: 'probe', taskType: 'p', maxAttempts: 1, timeouts: { leaseMs: 1000 } });
    const probe = await prober.nextOffer();
    probe.ack({ accept: true });
    expect((await untilOrder(hub, wf.id, 'probe', 'failed')).history.map((run) => run.outcome)).toEqual(['lease_expired']);
    gate.resolve();
    expect(await completion).toMatchObject({ ok: true });
    const job = await wf.getWorkOrder('job');
    expect({ state: job.state, history: job.history.map((run) => run.outcome), outputs: job.outputs }).toEqual({ state: 'completed', history: ['completed'], outputs: ['out'] });
  });

  it('accepts the offer it reports on, however long its files take to read past acceptMs', async () => {
    const { hub, wf, writer, prober, file, gate, reading } = await setup();
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { acceptMs: 500 } });
    // The agent works first and answers the offer later (as python-socketio acks once its handler returns).
    const { assignment } = await writer.nextOffer();
    const completion = writer.request('task.complete', { ...refOf(assignment), result: 'rows: 1', outputs: [{ id: 'out', path: file }] });
    await reading();
    // A probe offered later with the same acceptMs, never answered: once its offer ended, the job's would have too.
    await wf.createWorkOrder({ id: 'probe', taskType: 'p', timeouts: { acceptMs: 500 } });
    await prober.nextOffer();
    await untilTrue(() => hub.state.workflows.get(wf.id)!.workOrders['probe']!.declinedBy.includes('prober'), 'the probe offer to lapse');
    gate.resolve();
    expect(await completion).toMatchObject({ ok: true });
    const job = await wf.getWorkOrder('job');
    expect({ state: job.state, declinedBy: job.declinedBy, attempts: job.attempts }).toEqual({ state: 'completed', declinedBy: [], attempts: 1 });
  });
});

describe('a refused report that names data, on an offer not yet answered', () => {
  // "A refused request changed nothing": the hub holds the offer open while it reads the report's
  // files, and accepts it only with the report itself.
  it('task.complete refused with CONFLICT (an output id that exists) leaves the offer open: the agent may still decline it, and the order keeps its only attempt', async () => {
    const { client, wf, worker } = await rawAgentOnStartedWorkflow('eager', 'refused completion');
    await client.connection.request('data.register', { workflowId: wf.id, id: 'taken', path: 's3://bucket/x' });
    await wf.createWorkOrder({ id: 'job', taskType: 't', maxAttempts: 1 });
    const { assignment, ack } = await worker.nextOffer();
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'offered', attempts: 0, attempt: { acceptedAt: null } });

    const refused = await worker.request('task.complete', { ...refOf(assignment), result: 1, outputs: [{ id: 'taken', path: 's3://bucket/y' }] });
    expect(refused).toMatchObject({ ok: false, error: { code: 'CONFLICT' } });
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'offered', attempts: 0, attempt: { acceptedAt: null }, startedAt: null });

    ack({ accept: false, reason: 'cannot produce that output' });
    await expect.poll(async () => (await wf.getWorkOrder('job')).declinedBy, { timeout: 5000 }).toEqual(['eager']);
    const order = await wf.getWorkOrder('job');
    expect({ state: order.state, attempts: order.attempts, history: order.history, error: order.error }).toEqual({ state: 'queued', attempts: 0, history: [], error: null });
  });

  it('/agent data.register refused with FORBIDDEN (a file outside the data roots) leaves the offer open and the workflow unchanged', async () => {
    const { wf, worker } = await rawAgentOnStartedWorkflow('eager', 'refused registration');
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    const { assignment } = await worker.nextOffer();
    const version = (await wf.summary()).version;

    const refused = await worker.request('data.register', { ...refOf(assignment), id: 'out', path: '/etc/hostname' });
    expect(refused).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'offered', attempts: 0, attempt: { acceptedAt: null } });
    expect((await wf.summary()).version).toBe(version);
  });
});
