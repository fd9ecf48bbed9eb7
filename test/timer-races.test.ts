import { describe, expect, it, onTestFinished } from 'vitest';
import { EmbeddedStore, type RunningHub } from '../server/index.ts';
import { HeldWrites } from './helpers/held-writes.ts';
import { control, startHub, tempDir } from './helpers/hub.ts';
import { rawAgent, refOf } from './helpers/raw-agent.ts';
import { gateFileReads, outputRoot } from './helpers/gated-reads.ts';
import { untilOrder, untilTrue, untilWorkflow } from './helpers/wait.ts';

// Races between the work-order lifecycle and the hub's timers, made exact by a clock the test
// moves and journal writes it holds.

/** One sweep of the hub's timers, as the background sweep would run it. */
const sweep = (hub: RunningHub) => hub.dispatch({ type: 'hub.sweep', input: {}, actor: { role: 'system', name: 'test' } });

/** A hub on the test's clock (no background sweep) whose journal writes can be held, a started workflow and a raw one-slot agent for task type `t`. */
async function heldHubOnClock() {
  const dataDir = tempDir();
  const store = new HeldWrites(new EmbeddedStore({ dataDir, fsync: false, snapshotAfterBytes: 1 << 30, onWarning: () => undefined }));
  const clock = { now: Date.now() };
  const hub = await startHub({ dataDir, sweepIntervalMs: 60_000 }, { store, clock: () => clock.now });
  onTestFinished(() => store.release());
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'races with the timers' });
  await wf.start();
  const worker = await rawAgent(hub.url, 'raw-1', ['t']);
  return { hub, store, clock, client, wf, worker };
}

describe('an offer whose journal write is slow', () => {
  it('is not withdrawn, nor held against its agent, before it was sent: its accept window runs from the send', async () => {
    const { hub, store, clock, client, wf, worker } = await heldHubOnClock();
    store.hold();
    const created = wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { acceptMs: 1000, leaseMs: 30_000, overallMs: null } });
    await store.holding.promise;
    expect(hub.state.workflows.get(wf.id)!.workOrders.job!.state).toBe('offered');
    // The write outlasts acceptMs, and a sweep comes meanwhile: the agent has not been sent the offer yet.
    clock.now += 2000;
    const during = sweep(hub);
    store.release();
    await created;
    expect((await during).expiredOffers).toBe(0);
    const offer = await worker.nextOffer();
    // Its window started with the send: not over before acceptMs has passed since.
    clock.now += 900;
    expect((await sweep(hub)).expiredOffers).toBe(0);
    offer.ack({ accept: true });
    expect(await untilOrder(hub, wf.id, 'job', 'running')).toMatchObject({ declinedBy: [], attempts: 1, attempt: { token: offer.assignment.attemptToken } });
    expect((await client.getAgent('raw-1')).stats.declined).toBe(0);
    expect((await worker.request('task.complete', { ...refOf(offer.assignment), result: 1 })).ok).toBe(true);
  });

  it('ends at its ack\'s timeout, the sweep not needed, when nothing holds it open', async () => {
    // The test's clock stands still: the hub's own deadline for the offer is never reached, only the ack's timeout (acceptMs from the push).
    const { hub, wf, worker } = await heldHubOnClock();
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { acceptMs: 100, leaseMs: 30_000, overallMs: null } });
    await worker.nextOffer();
    const withdrawn = await untilWorkflow(hub, wf.id, (w) => w.workOrders.job!.declinedBy.length === 1, 'the silent offer withdrawn', 5000);
    expect(withdrawn.workOrders.job).toMatchObject({ state: 'queued', declinedBy: ['raw-1'], attempt: null });
  });
});

describe('a late sweep that finds both the grace and a lease over', () => {
  it('ends an attempt whose lease lapsed within the grace as lease_expired, and one whose lease outlasted it as agent_lost', async () => {
    const clock = { now: Date.now() };
    const hub = await startHub({ sweepIntervalMs: 60_000, graceMs: 10_000 }, { clock: () => clock.now });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'lease and grace at once' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'raw-1', ['t'], 2);
    await wf.createWorkOrder({ id: 'short', taskType: 't', timeouts: { acceptMs: 1000, leaseMs: 3000, overallMs: null } });
    await wf.createWorkOrder({ id: 'long', taskType: 't', timeouts: { acceptMs: 1000, leaseMs: 60_000, overallMs: null } });
    for (let i = 0; i < 2; i++) (await worker.nextOffer()).ack({ accept: true });
    await untilOrder(hub, wf.id, 'short', 'running');
    await untilOrder(hub, wf.id, 'long', 'running');
    worker.close();
    await untilTrue(() => hub.state.agents!['raw-1']!.disconnectedSince !== null, 'the disconnect recorded');
    // No sweep for longer than the grace (a paused hub): the short lease lapsed 3 s in, within it.
    clock.now += 11_000;
    expect(await sweep(hub)).toMatchObject({ offline: 1 });
    expect((await wf.getWorkOrder('short')).history).toMatchObject([{ outcome: 'lease_expired', error: 'lease of 3000 ms expired without a heartbeat' }]);
    expect((await wf.getWorkOrder('long')).history).toMatchObject([{ outcome: 'agent_lost', error: 'agent raw-1 went offline' }]);
  });
});

describe('a completion whose output files the hub is still reading when the overall timeout comes', () => {
  it('is taken, as it arrived within overallMs; the order does not fail under it', async () => {
    const { dir, file } = outputRoot();
    const clock = { now: Date.now() };
    const hub = await startHub({ sweepIntervalMs: 60_000, dataRoots: [dir] }, { clock: () => clock.now });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a big output near the deadline' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'raw-1', ['t']);
    // Reading the output waits for the gate (a big file being hashed).
    const { gate, reading } = gateFileReads();
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { acceptMs: 10_000, leaseMs: 30_000, overallMs: 5000 } });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    await untilOrder(hub, wf.id, 'job', 'running');
    clock.now += 4000;
    const completion = worker.request('task.complete', { ...refOf(offer.assignment), result: 'rows: 1', outputs: [{ id: 'out', path: file }] });
    await reading();
    clock.now += 2000;
    expect(await sweep(hub)).toMatchObject({ timedOut: 0 });
    gate.resolve();
    expect(await completion).toMatchObject({ ok: true, data: { state: 'completed' } });
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'completed', outputs: ['out'], history: [{ outcome: 'completed' }] });
  });

  it('fails the order once the read is over and the report was refused', async () => {
    const clock = { now: Date.now() };
    const { dir } = outputRoot();
    const hub = await startHub({ sweepIntervalMs: 60_000, dataRoots: [dir] }, { clock: () => clock.now });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'a refused output near the deadline' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'raw-1', ['t']);
    await wf.createWorkOrder({ id: 'job', taskType: 't', timeouts: { acceptMs: 10_000, leaseMs: 4000, overallMs: 5000 } });
    const offer = await worker.nextOffer();
    offer.ack({ accept: true });
    await untilOrder(hub, wf.id, 'job', 'running');
    clock.now += 1000;
    // A file outside the data roots: refused once looked at. The reading held the attempt for a lease (to 5 s in).
    expect(await worker.request('task.complete', { ...refOf(offer.assignment), outputs: [{ id: 'out', path: '/etc/hostname' }] })).toMatchObject({ ok: false });
    clock.now += 3500;
    expect(await worker.request('agent.heartbeat', { attemptTokens: [offer.assignment.attemptToken] })).toMatchObject({ ok: true });
    clock.now += 1000;
    expect(await sweep(hub)).toMatchObject({ timedOut: 1, lapsedLeases: 0 });
    expect(await wf.getWorkOrder('job')).toMatchObject({ state: 'failed', error: 'overall timeout of 5000 ms exceeded' });
  });
});

describe('an agent that reconnects while the hub reads the files of its report on an offer', () => {
  it('keeps the offer for that report, which accepts it: the completion that came before the reconnect is taken', async () => {
    const { dir, file } = outputRoot();
    const hub = await startHub({ sweepIntervalMs: 60_000, dataRoots: [dir] });
    const wf = await (await control(hub)).createWorkflow({ userQuery: 'reconnect during a read' });
    await wf.start();
    const worker = await rawAgent(hub.url, 'raw-1', ['t']);
    const { gate, reading } = gateFileReads();
    await wf.createWorkOrder({ id: 'job', taskType: 't' });
    // The agent works first and would answer the offer later (as python-socketio acks once its handler returns).
    const { assignment } = await worker.nextOffer();
    worker.socket.emit('task.complete', { ...refOf(assignment), result: 'rows: 1', outputs: [{ id: 'out', path: file }] }, () => undefined);
    await reading();
    // Its connection drops and the same agent registers again over a new one, the read still going on.
    const again = await rawAgent(hub.url, 'raw-1', ['t']);
    onTestFinished(() => void again.close());
    gate.resolve();
    const job = await untilOrder(hub, wf.id, 'job', 'completed');
    expect(job).toMatchObject({ attempts: 1, declinedBy: [], outputs: ['out'], history: [{ number: 1, agentId: 'raw-1', outcome: 'completed' }] });
    expect(again.offers).toHaveLength(0);
  });
});
