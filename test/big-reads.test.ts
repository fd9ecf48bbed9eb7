import { describe, expect, it } from 'vitest';
import type { Workflow } from '../shared/schemas/workflow.ts';
import { readTransfer } from '../client-sdk/transfers.ts';
import { renderReports, verifyReportHash } from '../server/reports/report.ts';
import { codeOf } from './helpers/errors.ts';
import { control, monitor, startHub, TOKENS } from './helpers/hub.ts';
import { untilTrue } from './helpers/wait.ts';

const ORDERS = 6000;

/**
 * A started workflow of ORDERS work orders, about 5 MB of JSON: past the 1 MB a reply may hold
 * inline and the size rendered on the event loop. Nobody serves its task type, so it stays put.
 */
async function bigWorkflow() {
  const hub = await startHub();
  const client = await control(hub);
  const wf = await client.createWorkflow({ userQuery: 'a big one' });
  await wf.start();
  const padding = 'x'.repeat(400);
  for (let first = 0; first < ORDERS; first += 1000) {
    await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this', description: padding })));
  }
  return { hub, client, wf };
}

/** The hub's copy of a workflow, detached from the live state. */
function copyOf(hub: { state: { workflows: ReadonlyMap<string, unknown> } }, id: string): Workflow {
  return structuredClone(hub.state.workflows.get(id)) as Workflow;
}

describe('reads of a big workflow never hold the hub', () => {
  it('renders a big report from the version asked for, in slices: a change sent after it is acknowledged before it', async () => {
    const { hub, wf } = await bigWorkflow();
    const asked = hub.state.versions.get(wf.id)!;
    const finished: string[] = [];
    // One connection: the hub takes the report request first, then the change.
    const report = wf.report('json').then((r) => (finished.push('report'), r));
    const change = wf.updateProgress('loading', 10).then(() => finished.push('change'));
    const [json] = await Promise.all([report, change]);
    expect(finished).toEqual(['change', 'report']);
    expect(json.version).toBe(asked);
    expect(verifyReportHash(json.body, json.hash)).toBe(true);
    const body = JSON.parse(json.body) as { workflow: Workflow };
    expect(Object.keys(body.workflow.workOrders)).toHaveLength(ORDERS);
    expect(body.workflow.stages).toEqual({});
    expect(hub.state.versions.get(wf.id)).toBe(asked + 1);

    // Rendered off the loop, the bytes are those the renderers give for the same version in this process.
    const version = hub.state.versions.get(wf.id)!;
    const here = renderReports({ workflow: copyOf(hub, wf.id), version, agents: {} }, ['markdown', 'html']);
    expect([(await wf.report('markdown')).body, (await wf.report('html')).body]).toEqual(here.map((r) => r.body));

    // Over HTTP the same bytes are streamed, stamped with the version and hash.
    const response = await fetch(`${hub.url}/api/workflows/${wf.id}/report.md`, { headers: { authorization: `Bearer ${TOKENS.monitor}` } });
    expect(response.headers.get('x-switchboard-version')).toBe(String(version));
    expect(response.headers.get('etag')).toBe(`"${here[0]!.hash}"`);
    expect(await response.text()).toBe(here[0]!.body);
  });

  it('answers reports asked for while a big render runs with every change acknowledged before them, at one version', async () => {
    const { hub, wf } = await bigWorkflow();
    const first = wf.report('json');
    await wf.updateProgress('loading', 10);
    // Asked after the change was acknowledged, while the first render runs: both come from the next render.
    const [markdown, html] = await Promise.all([wf.report('markdown'), wf.report('html')]);
    const version = hub.state.versions.get(wf.id)!;
    expect((await first).version).toBe(version - 1);
    expect([markdown.version, html.version]).toEqual([version, version]);
    expect(markdown.body).toContain('loading');
    const here = renderReports({ workflow: copyOf(hub, wf.id), version, agents: {} }, ['markdown', 'html']);
    expect([markdown.body, html.body]).toEqual(here.map((r) => r.body));
  });

  it('sends a big snapshot as a transfer read in parts, while changes go on; the mirror then equals the hub', async () => {
    const { hub, wf } = await bigWorkflow();
    const watcher = await monitor(hub);
    const finished: string[] = [];
    const raw = watcher.connection.request('subscribe', { doc: wf.id }).then((s) => (finished.push('snapshot'), s));
    const change = wf.updateProgress('loading', 20).then(() => finished.push('change'));
    const [subscription] = await Promise.all([raw, change]);
    expect(finished).toEqual(['change', 'snapshot']);
    if (subscription.mode !== 'snapshot' || !subscription.transfer) throw new Error(`expected a snapshot as a transfer, got ${JSON.stringify(subscription).slice(0, 200)}`);
    expect(subscription.state).toBeUndefined();
    expect(subscription.transfer.parts).toBeGreaterThan(1);
    const state = JSON.parse(await readTransfer(watcher.connection, subscription.transfer)) as Workflow;
    expect(Object.keys(state.workOrders)).toHaveLength(ORDERS);
    // Every part was read: the transfer is gone.
    expect(await codeOf(watcher.connection.request('transfer.read', { id: subscription.transfer.id, part: 0 }))).toBe('NOT_FOUND');

    // Through the SDK: a mirror that keeps up with changes made while its snapshot was read.
    const other = await monitor(hub);
    const mirroring = other.subscribe<Workflow>(wf.id);
    await wf.updateProgress('loading', 30);
    const mirror = await mirroring;
    await wf.updateProgress('loading', 40);
    await mirror.until((w) => w.stages.loading?.progress === 40, { what: 'the last change' });
    expect(mirror.version).toBe(hub.state.versions.get(wf.id));
    expect(mirror.state).toEqual(copyOf(hub, wf.id));
  });

  it('answers workflow.get for a big workflow with a transfer, which the SDK reads for you', async () => {
    const { hub, client, wf } = await bigWorkflow();
    const reply = await client.connection.request('workflow.get', { workflowId: wf.id });
    expect(reply.workflow).toBeUndefined();
    expect(reply.transfer?.bytes).toBeGreaterThan(1 << 20);
    expect(await wf.get()).toEqual(copyOf(hub, wf.id));
  });

  it('asks again for a big workflow or report whose transfer went with a dropped connection, instead of answering NOT_FOUND', async () => {
    const { hub, client, wf } = await bigWorkflow();
    const watcher = await monitor(hub);
    for (const [connection, read] of [
      [client.connection, () => wf.get()],
      [client.connection, () => wf.report('json')],
      [watcher.connection, () => watcher.report(wf.id, 'json')],
    ] as const) {
      const request = connection.request.bind(connection);
      const sent: string[] = [];
      connection.request = (async (event: string, ...rest: unknown[]) => {
        if (event === 'transfer.read' && !sent.includes('transfer.read')) {
          // The transfer was that connection's: read on the next one, it is NOT_FOUND.
          const before = connection.socket.id;
          connection.socket.io.engine.close();
          await untilTrue(() => connection.socket.connected && connection.socket.id !== before, 'the client back on a new connection');
        }
        sent.push(event);
        return (request as (...args: unknown[]) => Promise<unknown>)(event, ...rest);
      }) as typeof connection.request;
      const whole = await read();
      connection.request = request;
      expect(sent.filter((event) => event !== 'transfer.read')).toHaveLength(2);
      if ('workOrders' in whole) expect(whole).toEqual(copyOf(hub, wf.id));
      else expect(JSON.parse(whole.body).workflow.id).toBe(wf.id);
    }
  });

  it('answers a subscription to a big archived workflow with its final state as a transfer', async () => {
    const hub = await startHub({ keepFinishedMs: 0, sweepIntervalMs: 20 });
    const client = await control(hub);
    const wf = await client.createWorkflow({ userQuery: 'big, then archived' });
    for (let first = 0; first < ORDERS; first += 1000) {
      await wf.createWorkOrders(Array.from({ length: 1000 }, (_, i) => ({ id: `o${first + i}`, taskType: 'nobody-serves-this', description: 'x'.repeat(400) })));
    }
    await wf.cancel('done with it');
    const final = copyOf(hub, wf.id);
    await untilTrue(() => !hub.state.workflows.has(wf.id), 'the workflow archived');
    const watcher = await monitor(hub);
    const subscription = await watcher.connection.request('subscribe', { doc: wf.id });
    if (subscription.mode !== 'snapshot' || !subscription.transfer) throw new Error('expected a snapshot as a transfer');
    expect(JSON.parse(await readTransfer(watcher.connection, subscription.transfer))).toEqual(final);
    // Through the SDK, the same.
    expect((await (await monitor(hub)).subscribe<Workflow>(wf.id)).state).toEqual(final);
  });

  it('refuses transfer reads of unknown ids, of parts that do not exist, and of another connection', async () => {
    const { hub, wf } = await bigWorkflow();
    const owner = await monitor(hub);
    const stranger = await monitor(hub);
    const subscription = await owner.connection.request('subscribe', { doc: wf.id });
    if (subscription.mode !== 'snapshot' || !subscription.transfer) throw new Error('expected a transfer');
    const { id, parts } = subscription.transfer;
    expect(await codeOf(owner.connection.request('transfer.read', { id: 'tr_nothing', part: 0 }))).toBe('NOT_FOUND');
    expect(await codeOf(owner.connection.request('transfer.read', { id, part: parts }))).toBe('VALIDATION');
    expect(await codeOf(stranger.connection.request('transfer.read', { id, part: 0 }))).toBe('NOT_FOUND');
    expect(await codeOf(owner.connection.request('transfer.read', { id: '', part: 0 }))).toBe('VALIDATION');
    // The refusals took nothing away from the owner.
    expect((await owner.connection.request('transfer.read', { id, part: 0 })).data.byteLength).toBe(1 << 20);
  });
});
